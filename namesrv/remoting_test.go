package namesrv

import (
	"context"
	"testing"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

// The name server behind a real remoting server: both header encodings,
// and OnConnClose dropping a broker whose client goes away.
func TestOverRemoting(t *testing.T) {
	ns, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	mux := remoting.NewServeMux()
	ns.Register(mux)
	srv, err := remoting.NewServer(remoting.ServerConfig{Addr: "127.0.0.1:0", OnConnClose: ns.ConnClosed}, mux)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ns.Start()
	defer ns.Close()

	ctx := context.Background()
	brokerClient := remoting.NewClient(remoting.ClientConfig{})
	defer brokerClient.Close()
	h := protocol.RegisterBrokerRequestHeader{BrokerName: "b", BrokerAddr: "127.0.0.1:10911", ClusterName: "c", HAServerAddr: "127.0.0.1:10912"}
	for _, st := range []remoting.SerializeType{remoting.RocketMQ, remoting.JSON} {
		req := &remoting.RemotingCommand{Code: protocol.RegisterBroker, Version: protocol.CurrentVersion, ExtFields: protocol.EncodeHeader(&h),
			Body: registerBody(brokerSpec{topics: stdTopics}), SerializeType: st}
		resp, err := brokerClient.InvokeSync(ctx, srv.Addr(), req, 3*time.Second)
		if err != nil || resp.Code != protocol.Success {
			t.Fatalf("register (serialize type %d): %v %+v", st, err, resp)
		}
	}

	client := remoting.NewClient(remoting.ClientConfig{})
	defer client.Close()
	route := func() *remoting.RemotingCommand {
		t.Helper()
		req := &remoting.RemotingCommand{Code: protocol.GetRouteinfoByTopic, Version: protocol.VersionV4_5_2,
			ExtFields: remoting.FieldsOf("topic", "TBW102"), SerializeType: remoting.RocketMQ}
		resp, err := client.InvokeSync(ctx, srv.Addr(), req, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := route(); resp.Code != protocol.Success {
		t.Fatalf("route: %+v", resp)
	}

	brokerClient.Close() // the broker's connection goes away
	deadline := time.Now().Add(5 * time.Second)
	for route().Code != protocol.TopicNotExist {
		if time.Now().After(deadline) {
			t.Fatal("broker still routed after its connection closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package dledgernet

import (
	"context"
	"time"

	"github.com/rmqd/rmqd/remoting"
)

type fakeConn struct{}

func (fakeConn) ID() uint64                               { return 0 }
func (fakeConn) RemoteAddr() string                       { return "127.0.0.1:1" }
func (fakeConn) LocalAddr() string                        { return "127.0.0.1:2" }
func (fakeConn) Send(cmd *remoting.RemotingCommand) error { return nil }
func (fakeConn) Invoke(ctx context.Context, req *remoting.RemotingCommand, timeout time.Duration) (*remoting.RemotingCommand, error) {
	return nil, nil
}
func (fakeConn) Close() error { return nil }

func remotingCmd(body []byte) *remoting.RemotingCommand {
	return &remoting.RemotingCommand{Code: CodeRaftMessages, Body: body}
}

package protocol

import (
	"errors"
	"reflect"
	"testing"
)

// A Java 5.x broker's REGISTER_BROKER body, including the static-topic maps
// with bare integer keys (protocol.md §4.4).
const javaRegisterBody = `{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":3,"stateVersion":0,"timestamp":1700000000000},"mappingDataVersion":{"counter":0,"stateVersion":0,"timestamp":1700000000000},"topicConfigTable":{"TestTopic":{"attributes":{},"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"TestTopic","topicSysFlag":0,"writeQueueNums":4},"TBW102":{"attributes":{},"order":false,"perm":7,"readQueueNums":8,"topicFilterType":"SINGLE_TAG","topicName":"TBW102","topicSysFlag":0,"writeQueueNums":8}},"topicQueueMappingDetailMap":{"S":{"hostedQueues":{0:[{"bname":"b","logicOffset":0}]}}},"topicQueueMappingInfoMap":{}}}`

func TestDecodeJavaRegisterBody(t *testing.T) {
	r, err := DecodeRegisterBrokerBody([]byte(javaRegisterBody), false)
	if err != nil {
		t.Fatal(err)
	}
	w := r.TopicConfigSerializeWrapper
	if w.DataVersion != (DataVersion{Counter: 3, Timestamp: 1700000000000}) {
		t.Errorf("data version %+v", w.DataVersion)
	}
	if len(w.TopicConfigTable) != 2 || w.TopicConfigTable["TBW102"].Perm != 7 || w.TopicConfigTable["TestTopic"].WriteQueueNums != 4 {
		t.Errorf("topics %+v", w.TopicConfigTable)
	}
}

func TestRegisterBodyRoundTrip(t *testing.T) {
	in := &RegisterBrokerBody{
		TopicConfigSerializeWrapper: TopicConfigSerializeWrapper{
			DataVersion: DataVersion{Counter: 9, Timestamp: 1234},
			TopicConfigTable: map[string]*TopicConfig{
				"A":      {TopicName: "A", ReadQueueNums: 4, WriteQueueNums: 2, Perm: 6, TopicFilterType: SingleTag, Attributes: map[string]string{"+message.type": "FIFO"}},
				"TBW102": {TopicName: "TBW102", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 7, TopicFilterType: SingleTag, Attributes: map[string]string{}},
			},
		},
		FilterServerList: []string{},
	}
	for _, compressed := range []bool{false, true} {
		var body []byte
		if compressed {
			body = EncodeCompressedRegisterBrokerBody(in)
		} else {
			body = in.Encode()
		}
		out, err := DecodeRegisterBrokerBody(body, compressed)
		if err != nil {
			t.Fatalf("compressed=%v: %v", compressed, err)
		}
		if !reflect.DeepEqual(out, in) {
			t.Errorf("compressed=%v:\n got %+v\nwant %+v", compressed, out, in)
		}
	}
}

func TestDecodeRegisterBodyErrors(t *testing.T) {
	for _, c := range []struct {
		body       string
		compressed bool
	}{
		{`{"topicConfigSerializeWrapper":`, false},
		{`not zlib at all`, true},
		{"\x78\x9c\x01\x00", true},
	} {
		if _, err := DecodeRegisterBrokerBody([]byte(c.body), c.compressed); !errors.Is(err, ErrBadRegisterBody) {
			t.Errorf("%q: err = %v", c.body, err)
		}
	}
	r, err := DecodeRegisterBrokerBody(nil, false)
	if err != nil || r.TopicConfigSerializeWrapper.TopicConfigTable == nil {
		t.Fatalf("empty body: %v %+v", err, r)
	}
}

func TestTopicConfigText(t *testing.T) {
	tc, err := DecodeTopicConfigText("T 4 2 6 SINGLE_TAG")
	if err != nil || tc.ReadQueueNums != 4 || tc.WriteQueueNums != 2 || tc.Perm != 6 {
		t.Fatalf("4.x form: %v %+v", err, tc)
	}
	if _, err := DecodeTopicConfigText("T 4 x 6 SINGLE_TAG"); err == nil {
		t.Fatal("bad number accepted")
	}
	if got := tc.EncodeText(); got != "T 4 2 6 SINGLE_TAG {}" {
		t.Fatalf("EncodeText = %q", got)
	}
}

func TestSmallBodies(t *testing.T) {
	if got := string((&TopicList{}).Encode()); got != `{"topicList":[]}` {
		t.Errorf("TopicList: %s", got)
	}
	if got := string((&TopicList{TopicList: []string{"a"}, BrokerAddr: "h:1"}).Encode()); got != `{"brokerAddr":"h:1","topicList":["a"]}` {
		t.Errorf("TopicList: %s", got)
	}
	if got := string((&KVTable{}).Encode()); got != `{"table":{}}` {
		t.Errorf("KVTable: %s", got)
	}
	if got := string(DataVersion{Counter: 1, Timestamp: 2}.Encode()); got != `{"counter":1,"stateVersion":0,"timestamp":2}` {
		t.Errorf("DataVersion: %s", got)
	}
	if PermString(7) != "RWX" || PermString(4) != "R--" || !IsWriteable(6) || IsInherited(6) {
		t.Error("perm helpers")
	}
}

package protocol

import "testing"

func TestExtrasHeadersDecodeGoClient(t *testing.T) {
	// Observed from rocketmq-client-go (protocol.md §2.2).
	var sb ConsumerSendMsgBackRequestHeader
	err := DecodeHeader(fields(map[string]string{"maxReconsumeTimes": "16", "bname": "broker-a", "group": "cg", "offset": "0",
		"delayLevel": "0", "originMsgId": "C0000001", "originTopic": "TestTopic", "unitMode": "false"}), &sb)
	if err != nil || sb.Group != "cg" || sb.MaxReconsumeTimes == nil || *sb.MaxReconsumeTimes != 16 || sb.OriginTopic != "TestTopic" {
		t.Fatalf("send back: %+v %v", sb, err)
	}
	var sb2 ConsumerSendMsgBackRequestHeader
	if err := DecodeHeader(fields(map[string]string{"group": "g", "offset": "7", "delayLevel": "-1"}), &sb2); err != nil || sb2.MaxReconsumeTimes != nil || sb2.DelayLevel != -1 {
		t.Fatalf("send back without max: %+v %v", sb2, err)
	}

	var et EndTransactionRequestHeader
	err = DecodeHeader(fields(map[string]string{"fromTransactionCheck": "false", "msgId": "C0001", "transactionId": "", "bname": "broker-a",
		"producerGroup": "txg", "tranStateTableOffset": "3", "commitLogOffset": "1234", "commitOrRollback": "8"}), &et)
	if err != nil || et.ProducerGroup != "txg" || et.TranStateTableOffset != 3 || et.CommitLogOffset != 1234 || et.CommitOrRollback != TransactionCommit {
		t.Fatalf("end transaction: %+v %v", et, err)
	}

	ext := EncodeHeader(&CheckTransactionStateRequestHeader{Topic: "T", TranStateTableOffset: 5, CommitLogOffset: 99, MsgID: "U", TransactionID: "U", OffsetMsgID: "O"})
	if ext.Get("tranStateTableOffset") != "5" || ext.Get("commitLogOffset") != "99" || ext.Get("offsetMsgId") != "O" || ext.Get("topic") != "T" {
		t.Fatalf("check header: %v", ext)
	}
}

package metadata

import (
	"testing"
)

func FuzzUnmarshalOp(f *testing.F) {
	tc := NewTopicConfig("T", 4)
	g := NewSubscriptionGroupConfig("g")
	for _, op := range []Op{
		{Kind: OpPutTopic, Time: 1, TopicConfig: &tc},
		{Kind: OpPutGroup, Time: 1, GroupConfig: &g},
		{Kind: OpCommitOffsets, Time: 1, Group: "g", Offsets: []QueueOffset{{"T", 0, 1}}},
		{Kind: OpRemoveOffsets, Topic: "T"},
	} {
		b, err := MarshalOp(op)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := UnmarshalOp(b)
		if err != nil {
			return
		}
		// whatever decodes re-encodes and applies without panicking
		if _, err := MarshalOp(op); err != nil {
			t.Fatalf("decoded op does not re-encode: %v", err)
		}
		m := &Metadata{Topics: newTopicManager(), Groups: newGroupManager(), Offsets: newOffsetManager(), Delay: newDelayOffsetManager(), now: fixedNow}
		if err := m.Apply(op); err != nil {
			t.Fatalf("valid op does not apply: %v", err)
		}
	})
}

func FuzzDecodeFiles(f *testing.F) {
	for _, s := range []string{`{"offsetTable":{"T@g":{0:1}}}`, `{"topicConfigTable":{"T":{"perm":6}}}`,
		`{"subscriptionGroupTable":{"g":{}}}`, `{"offsetTable":{1:0}}`, `{0:`, `{"a":"\"{0:1}"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeTopics(b)
		_, _ = decodeGroups(b)
		_, _ = decodeOffsets(b)
		_, _ = decodeDelay(b)
	})
}

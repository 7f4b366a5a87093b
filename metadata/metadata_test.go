package metadata

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
)

const dir = "/store/config"

func fixedNow() time.Time { return time.UnixMilli(1800000000000) }

func openMem(t *testing.T, fs vfs.FS) *Metadata {
	t.Helper()
	m, err := Open(Options{Dir: dir, FS: fs, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// memWithTestdata returns a MemFS holding testdata/*.json under dir.
func memWithTestdata(t *testing.T) *vfs.MemFS {
	t.Helper()
	fs := vfs.NewMem()
	if err := fs.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range fileNames {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, fs, filepath.Join(dir, name), data)
	}
	return fs
}

func writeFile(t *testing.T, fs vfs.FS, path string, data []byte) {
	t.Helper()
	if err := vfs.WriteFileAtomic(fs, path, data); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, fs vfs.FS, path string) string {
	t.Helper()
	b, err := vfs.ReadFile(fs, path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestQuoteIntKeys(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{0:12,1:5}`, `{"0":12,"1":5}`},
		{`{ 0 : 12 , 1:5 }`, `{ "0" : 12 , "1":5 }`},
		{`{-1:3}`, `{"-1":3}`},
		{`{"0":12}`, `{"0":12}`},
		{`{"a":{0:1},"b":[1,2,{3:4}]}`, `{"a":{"0":1},"b":[1,2,{"3":4}]}`},
		{`{"s":"{0:1}","t":"x\"{1:2}"}`, `{"s":"{0:1}","t":"x\"{1:2}"}`},
		{`[1,2,3]`, `[1,2,3]`},
		{"{\n\t\t\"T@g\":{0:12,\n1:5}\n}", "{\n\t\t\"T@g\":{\"0\":12,\n\"1\":5}\n}"},
		{`{}`, `{}`},
	}
	for _, tt := range tests {
		if got := string(quoteIntKeys([]byte(tt.in))); got != tt.want {
			t.Errorf("quoteIntKeys(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLoadJavaFiles(t *testing.T) {
	m := openMem(t, memWithTestdata(t))

	tc, ok := m.Topics.Get("TopicA")
	want := TopicConfig{Attributes: map[string]string{}, Perm: 6, ReadQueueNums: 4, TopicFilterType: SingleTag, TopicName: "TopicA", WriteQueueNums: 4}
	if !ok || !reflect.DeepEqual(tc, want) {
		t.Fatalf("TopicA = %+v", tc)
	}
	if tc, _ := m.Topics.Get("%RETRY%groupA"); tc.Attributes == nil || tc.ReadQueueNums != 1 {
		t.Fatalf("4.x topic without attributes: %+v", tc)
	}
	if tc, _ := m.Topics.Get("OrderedTopic"); !tc.Order || tc.TopicFilterType != MultiTag || tc.Attributes["+message.type"] != "FIFO" {
		t.Fatalf("OrderedTopic: %+v", tc)
	}
	if dv := m.Topics.DataVersion(); dv != (DataVersion{Counter: 3, Timestamp: 1700000000123}) {
		t.Fatalf("topics data version %+v", dv)
	}
	if m.Topics.Len() != 4 {
		t.Fatalf("topics %v", m.Topics.Names())
	}

	g, ok := m.Groups.Get("groupA")
	if !ok || !reflect.DeepEqual(g, NewSubscriptionGroupConfig("groupA")) {
		t.Fatalf("groupA = %+v", g)
	}
	g, _ = m.Groups.Get("groupB")
	if g.RetryMaxTimes != 3 || g.ConsumeBroadcastEnable || g.ConsumeTimeoutMinute != 15 || g.Attributes == nil || g.GroupRetryPolicy.Type != "EXPONENTIAL" ||
		string(g.GroupRetryPolicy.ExponentialRetryPolicy) != `{"initial":1000,"max":60000,"multiplier":2}` {
		t.Fatalf("groupB = %+v", g)
	}

	if got := m.Offsets.QueryAll("groupA", "TopicA"); !reflect.DeepEqual(got, map[int32]int64{0: 12, 1: 5, 2: 0, 3: 1024}) {
		t.Fatalf("unquoted keys: %v", got)
	}
	if got := m.Offsets.QueryAll("groupB", "TopicA"); !reflect.DeepEqual(got, map[int32]int64{0: 7, 1: 9}) {
		t.Fatalf("quoted keys: %v", got)
	}
	if m.Offsets.Query("groupA", "%RETRY%groupA", 0) != 3 || m.Offsets.Query("groupA", "TopicA", 9) != -1 || m.Offsets.Query("nope", "TopicA", 0) != -1 {
		t.Fatal("Query")
	}

	if got := m.Delay.Table(); !reflect.DeepEqual(got, map[int32]int64{1: 0, 2: 15, 3: 7, 18: 1}) {
		t.Fatalf("delay %v", got)
	}
	if m.Delay.DataVersion().Counter != 5 {
		t.Fatal("delay data version")
	}
}

func TestEncodeShapes(t *testing.T) {
	m := openMem(t, vfs.NewMem())
	must(t, m.Apply(Op{Kind: OpCommitOffsets, Time: 42, Group: "g", Offsets: []QueueOffset{{"T", 1, 5}, {"T", 0, 12}, {"%RETRY%g", 0, 3}}}))
	must(t, m.Apply(Op{Kind: OpCommitDelayOffsets, Time: 43, Offsets: []QueueOffset{{"", 2, 15}, {"", 1, 0}}}))
	tc := NewTopicConfig("T", 4)
	must(t, m.Apply(Op{Kind: OpPutTopic, Time: 44, TopicConfig: &tc}))
	g := NewSubscriptionGroupConfig("g")
	must(t, m.Apply(Op{Kind: OpPutGroup, Time: 45, GroupConfig: &g}))

	golden := []struct{ got, want string }{
		{string(m.Offsets.Encode(false)),
			`{"dataVersion":{"counter":1,"stateVersion":0,"timestamp":42},"offsetTable":{"%RETRY%g@g":{0:3},"T@g":{0:12,1:5}}}`},
		{string(m.Offsets.Encode(true)),
			"{\n\t\"dataVersion\":{\n\t\t\"counter\":1,\n\t\t\"stateVersion\":0,\n\t\t\"timestamp\":42\n\t},\n\t\"offsetTable\":{\n\t\t\"%RETRY%g@g\":{0:3},\n\t\t\"T@g\":{0:12,1:5}\n\t}\n}"},
		{string(m.Delay.Encode(false)),
			`{"dataVersion":{"counter":1,"stateVersion":0,"timestamp":43},"offsetTable":{1:0,2:15}}`},
		{string(m.Topics.Encode(false)),
			`{"dataVersion":{"counter":1,"stateVersion":0,"timestamp":44},"topicConfigTable":{"T":{"attributes":{},"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"T","topicSysFlag":0,"writeQueueNums":4}}}`},
		{string(m.Groups.Encode(false)),
			`{"dataVersion":{"counter":1,"stateVersion":0,"timestamp":45},"forbiddenTable":{},"subscriptionGroupTable":{"g":{"attributes":{},"brokerId":0,"consumeBroadcastEnable":true,"consumeEnable":true,"consumeFromMinEnable":true,"consumeMessageOrderly":false,"consumeTimeoutMinute":15,"groupName":"g","groupRetryPolicy":{"type":"CUSTOMIZED"},"groupSysFlag":0,"notifyConsumerIdsChangedEnable":true,"retryMaxTimes":16,"retryQueueNums":1,"whichBrokerWhenConsumeSlowly":1}}}`},
		{string(newOffsetManager().Encode(false)), `{"dataVersion":{"counter":0,"stateVersion":0,"timestamp":0},"offsetTable":{}}`},
	}
	for i, g := range golden {
		if g.got != g.want {
			t.Errorf("golden %d:\n got %s\nwant %s", i, g.got, g.want)
		}
	}
	// pretty output is fastjson's: tabs, no blank after ':', strings untouched
	tricky := NewTopicConfig("Q", 1)
	tricky.Attributes["k"] = `a\": b: c`
	must(t, m.Apply(Op{Kind: OpPutTopic, Time: 46, TopicConfig: &tricky}))
	pretty := string(m.Topics.Encode(true))
	if !strings.Contains(pretty, "\n\t\t\t\"perm\":6,\n") || !strings.Contains(pretty, `"k":"a\\\": b: c"`) {
		t.Fatalf("pretty topics:\n%s", pretty)
	}
	back, err := decodeTopics([]byte(pretty))
	must(t, err)
	if back.TopicConfigTable["Q"].Attributes["k"] != tricky.Attributes["k"] {
		t.Fatalf("attribute %q", back.TopicConfigTable["Q"].Attributes["k"])
	}
	// every encoding is standard JSON once integer keys are quoted
	for _, b := range [][]byte{m.Offsets.Encode(true), m.Delay.Encode(true), m.Topics.Encode(true), m.Groups.Encode(true)} {
		if !json.Valid(quoteIntKeys(b)) {
			t.Errorf("invalid JSON: %s", b)
		}
	}
}

// TestRoundTripJavaFiles: load Java-written files, change them, persist, and
// reload: everything survives, the offset files use unquoted integer keys.
func TestRoundTripJavaFiles(t *testing.T) {
	fs := memWithTestdata(t)
	m := openMem(t, fs)
	before := snapshotAll(m)
	must(t, m.CommitOffset("groupA", "TopicA", 0, 13))
	must(t, m.CommitDelayOffset(2, 16))
	must(t, m.PutTopic(NewTopicConfig("TopicB", 2)))
	must(t, m.PutGroup(NewSubscriptionGroupConfig("groupC")))
	must(t, m.Persist())

	off := readFile(t, fs, filepath.Join(dir, ConsumerOffsetFile))
	if !strings.Contains(off, `"TopicA@groupA":{0:13,1:5,2:0,3:1024}`) || !strings.Contains(off, `"TopicA@groupB":{0:7,1:9}`) {
		t.Fatalf("consumerOffset.json:\n%s", off)
	}
	if d := readFile(t, fs, filepath.Join(dir, DelayOffsetFile)); !strings.Contains(d, `"offsetTable":{1:0,2:16,3:7,18:1}`) {
		t.Fatalf("delayOffset.json:\n%s", d)
	}
	// the previous versions are kept as .bak
	for _, name := range fileNames {
		orig, _ := os.ReadFile(filepath.Join("testdata", name))
		if got := readFile(t, fs, filepath.Join(dir, name+".bak")); got != string(orig) {
			t.Errorf("%s.bak is not the previous version:\n%s", name, got)
		}
	}

	m2 := openMem(t, fs)
	after := snapshotAll(m2)
	if !reflect.DeepEqual(after, snapshotAll(m)) {
		t.Fatalf("reload differs:\n%v\n%v", after, snapshotAll(m))
	}
	if reflect.DeepEqual(after, before) {
		t.Fatal("changes lost")
	}
	// unchanged groupB with raw retry policy survives byte for byte
	g, _ := m2.Groups.Get("groupB")
	if string(g.GroupRetryPolicy.ExponentialRetryPolicy) != `{"initial":1000,"max":60000,"multiplier":2}` {
		t.Fatalf("groupB policy %s", g.GroupRetryPolicy.ExponentialRetryPolicy)
	}
}

type allState struct {
	Topics  map[string]TopicConfig
	TopicDV DataVersion
	Groups  map[string]SubscriptionGroupConfig
	GroupDV DataVersion
	Offsets map[string]map[int32]int64
	Delay   map[int32]int64
}

func snapshotAll(m *Metadata) allState {
	var s allState
	s.Topics, s.TopicDV = m.Topics.All()
	s.Groups, s.GroupDV = m.Groups.All()
	s.Offsets = m.Offsets.Table()
	s.Delay = m.Delay.Table()
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestBakFallback(t *testing.T) {
	topicsV := func(n int) []byte {
		return fmt.Appendf(nil, `{"dataVersion":{"counter":%d,"timestamp":1},"topicConfigTable":{"T%d":{"topicName":"T%d","perm":6,"readQueueNums":1,"writeQueueNums":1}}}`, n, n, n)
	}
	main := filepath.Join(dir, TopicsFile)
	tests := []struct {
		name      string
		main, bak []byte // nil = absent
		want      string // topic expected, "" = empty table
		wantErr   bool
	}{
		{"both absent: first start", nil, nil, "", false},
		{"main good", topicsV(2), topicsV(1), "T2", false},
		{"main missing", nil, topicsV(1), "T1", false},
		{"main empty", []byte{}, topicsV(1), "T1", false},
		{"main truncated", topicsV(2)[:40], topicsV(1), "T1", false},
		{"main garbage", []byte("\x00\x00\x00"), topicsV(1), "T1", false},
		{"main corrupt, no bak", []byte("{"), nil, "", true},
		{"both corrupt", []byte("{"), []byte("}"), "", true},
		{"main missing, bak corrupt", nil, []byte("{"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewMem()
			must(t, fs.MkdirAll(dir))
			if tt.main != nil {
				writeFile(t, fs, main, tt.main)
			}
			if tt.bak != nil {
				writeFile(t, fs, main+".bak", tt.bak)
			}
			m, err := Open(Options{Dir: dir, FS: fs})
			if tt.wantErr {
				if err == nil {
					t.Fatal("want error")
				}
				return
			}
			must(t, err)
			names := m.Topics.Names()
			if tt.want == "" && len(names) != 0 || tt.want != "" && !reflect.DeepEqual(names, []string{tt.want}) {
				t.Fatalf("topics %v, want %q", names, tt.want)
			}
		})
	}

	// After loading the .bak because the main file was corrupt, the next
	// write must not rotate the corrupt file into .bak.
	fs := vfs.NewMem()
	must(t, fs.MkdirAll(dir))
	writeFile(t, fs, main, []byte("{corrupt"))
	writeFile(t, fs, main+".bak", topicsV(1))
	m := openMem(t, fs)
	must(t, m.PutTopic(NewTopicConfig("T9", 1)))
	if got := readFile(t, fs, main+".bak"); got != string(topicsV(1)) {
		t.Fatalf("good .bak overwritten by %q", got)
	}
	must(t, m.PutTopic(NewTopicConfig("T10", 1)))
	if got := readFile(t, fs, main+".bak"); !strings.Contains(got, `"T9"`) || strings.Contains(got, `"T10"`) {
		t.Fatalf(".bak should now be the previous version: %s", got)
	}
}

// TestCrashDuringWrite fails the Nth filesystem operation of a persist, then
// crashes: the reopened metadata holds the old or the new version, whole.
func TestCrashDuringWrite(t *testing.T) {
	build := func(fs vfs.FS) *Metadata {
		m, err := Open(Options{Dir: dir, FS: fs, Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// a persisted v1 (with a .bak from v0)
	base := vfs.NewMem()
	m := build(base)
	must(t, m.PutTopic(NewTopicConfig("A", 1)))
	must(t, m.CommitOffset("g", "A", 0, 1))
	must(t, m.Persist())
	must(t, m.CommitOffset("g", "A", 0, 2))
	must(t, m.Persist())
	v1 := snapshotAll(build(base.CrashClone(nil)))

	for n := 1; ; n++ {
		fs := base.CrashClone(nil)
		var count int
		armed := false
		efs := &vfs.ErrorFS{FS: fs, Inject: func(op vfs.Op, path string) error {
			if !armed || op == vfs.OpRead {
				return nil
			}
			count++
			if count == n {
				return vfs.ErrInjected
			}
			return nil
		}}
		m := build(efs)
		armed = true
		must(t, m.CommitOffset("g", "A", 0, 3))
		err := m.PutTopic(NewTopicConfig("B", 1)) // persists topics.json at once (logged on failure)
		_ = err
		perr := m.Persist()
		v2 := snapshotAll(m)
		torn := fs.CrashClone(rand.New(rand.NewPCG(uint64(n), 7)))
		for i, crashed := range []*vfs.MemFS{fs.CrashClone(nil), fs.ProcessCrashClone(), torn} {
			got := snapshotAll(build(crashed))
			// each table independently is v1 or v2
			if !reflect.DeepEqual(got.Topics, v1.Topics) && !reflect.DeepEqual(got.Topics, v2.Topics) {
				t.Fatalf("n=%d clone %d: topics %v", n, i, got.Topics)
			}
			if !reflect.DeepEqual(got.Offsets, v1.Offsets) && !reflect.DeepEqual(got.Offsets, v2.Offsets) {
				t.Fatalf("n=%d clone %d: offsets %v", n, i, got.Offsets)
			}
		}
		if count < n && perr == nil { // nothing left to fail: every step was covered
			t.Logf("covered %d failure points", n-1)
			if n < 8 {
				t.Fatalf("only %d fs operations per persist?", n)
			}
			break
		}
	}
}

func TestOpRoundTrip(t *testing.T) {
	tc := NewTopicConfig("T", 8)
	tc.Attributes["+message.type"] = "NORMAL"
	g := NewSubscriptionGroupConfig("g")
	g.GroupRetryPolicy.CustomizedRetryPolicy = json.RawMessage(`{"next":[1000,5000]}`)
	ops := []Op{
		{Kind: OpPutTopic, Time: 1, TopicConfig: &tc},
		{Kind: OpDeleteTopic, Time: 2, Topic: "T"},
		{Kind: OpPutGroup, Time: 3, GroupConfig: &g},
		{Kind: OpDeleteGroup, Time: 4, Group: "g"},
		{Kind: OpCommitOffsets, Time: 5, Group: "g", Offsets: []QueueOffset{{"T", 0, 1}, {"%RETRY%g", 3, 1 << 40}}},
		{Kind: OpResetOffsets, Time: -6, Group: "g", Offsets: []QueueOffset{{"T", 1, 0}}},
		{Kind: OpRemoveOffsets, Time: 7, Topic: "T"},
		{Kind: OpRemoveOffsets, Time: 7, Group: "g"},
		{Kind: OpCommitDelayOffsets, Time: 8, Offsets: []QueueOffset{{"", 1, 9}}},
		{Kind: OpResetDelayOffsets, Time: 9, Offsets: []QueueOffset{{"", 18, 0}}},
	}
	for _, op := range ops {
		t.Run(op.Kind.String(), func(t *testing.T) {
			b, err := MarshalOp(op)
			must(t, err)
			got, err := UnmarshalOp(b)
			must(t, err)
			if !reflect.DeepEqual(got, op) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, op)
			}
			// every truncation fails cleanly, never panics
			for i := 0; i < len(b); i++ {
				if _, err := UnmarshalOp(b[:i]); err == nil {
					t.Fatalf("truncated to %d bytes: no error", i)
				}
			}
			// trailing garbage
			if _, err := UnmarshalOp(append(b, 0)); !errors.Is(err, ErrBadOp) {
				t.Fatalf("trailing byte: %v", err)
			}
			// byte flips never panic
			for i := range b {
				c := append([]byte(nil), b...)
				c[i] ^= 0xff
				_, _ = UnmarshalOp(c)
			}
		})
	}
	if _, err := UnmarshalOp([]byte{opFormat, byte(opKindEnd), 0, 0, 0, 0, 0, 0}); !errors.Is(err, ErrUnknownOp) {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := UnmarshalOp([]byte{9, 1}); !errors.Is(err, ErrBadOp) {
		t.Fatalf("bad format: %v", err)
	}
	if _, err := MarshalOp(Op{Kind: OpPutTopic}); !errors.Is(err, ErrBadOp) {
		t.Fatalf("invalid op: %v", err)
	}
	if OpKind(200).String() != "OpKind(200)" || OpResetDelayOffsets.String() != "ResetDelayOffsets" {
		t.Fatal("String")
	}
}

// TestOpKindValuesFrozen guards the on-log values: append, never renumber.
func TestOpKindValuesFrozen(t *testing.T) {
	want := map[OpKind]uint8{OpPutTopic: 1, OpDeleteTopic: 2, OpPutGroup: 3, OpDeleteGroup: 4, OpCommitOffsets: 5,
		OpResetOffsets: 6, OpRemoveOffsets: 7, OpCommitDelayOffsets: 8, OpResetDelayOffsets: 9}
	for k, v := range want {
		if uint8(k) != v {
			t.Errorf("%s = %d, must stay %d", k, k, v)
		}
	}
	if int(opKindEnd) != len(opKindNames) {
		t.Error("opKindNames out of date")
	}
}

func TestOffsetsNeverGoBackward(t *testing.T) {
	m := openMem(t, vfs.NewMem())
	steps := []struct {
		do   func() error
		want int64
	}{
		{func() error { return m.CommitOffset("g", "T", 0, 10) }, 10},
		{func() error { return m.CommitOffset("g", "T", 0, 5) }, 10}, // ignored
		{func() error { return m.CommitOffset("g", "T", 0, 10) }, 10},
		{func() error { return m.CommitOffset("g", "T", 0, 11) }, 11},
		{func() error { return m.ResetOffsets("g", "T", map[int32]int64{0: 3}) }, 3}, // explicit reset may go back
		{func() error { return m.CommitOffset("g", "T", 0, 4) }, 4},
		{func() error { return m.CommitOffsets("g", []QueueOffset{{"T", 0, 2}, {"T", 1, 7}}) }, 4},
	}
	for i, s := range steps {
		must(t, s.do())
		if got := m.Offsets.Query("g", "T", 0); got != s.want {
			t.Fatalf("step %d: offset %d, want %d", i, got, s.want)
		}
	}
	if m.Offsets.Query("g", "T", 1) != 7 {
		t.Fatal("queue 1")
	}
	// replaying the same ops (as after a restart from an older snapshot) changes nothing
	op := Op{Kind: OpCommitOffsets, Group: "g", Offsets: []QueueOffset{{"T", 0, 1}}}
	must(t, m.Apply(op))
	if m.Offsets.Query("g", "T", 0) != 4 {
		t.Fatal("old commit replay moved the offset back")
	}
	// delay offsets too
	must(t, m.CommitDelayOffset(3, 100))
	must(t, m.CommitDelayOffset(3, 50))
	if m.Delay.Get(3) != 100 {
		t.Fatal("delay went back")
	}
	must(t, m.ResetDelayOffset(3, 50))
	if m.Delay.Get(3) != 50 || m.Delay.Get(4) != 0 {
		t.Fatal("delay reset")
	}
}

func TestOffsetQueries(t *testing.T) {
	m := openMem(t, vfs.NewMem())
	must(t, m.CommitOffsets("g1", []QueueOffset{{"T", 0, 10}, {"T", 1, 20}, {"U", 0, 1}}))
	must(t, m.CommitOffsets("g2", []QueueOffset{{"T", 0, 5}, {"T", 1, 30}}))
	must(t, m.CommitOffsets("g3", []QueueOffset{{"T", 0, 1}}))
	if got := m.Offsets.QueryMinOffsetInAllGroup("T", "g3, gx"); !reflect.DeepEqual(got, map[int32]int64{0: 5, 1: 20}) {
		t.Fatalf("min %v", got)
	}
	if got := m.Offsets.QueryMinOffsetInAllGroup("T", ""); got[0] != 1 {
		t.Fatalf("min %v", got)
	}
	if got := m.Offsets.WhichTopicByConsumer("g1"); !reflect.DeepEqual(got, []string{"T", "U"}) {
		t.Fatal(got)
	}
	if got := m.Offsets.WhichGroupByTopic("T"); !reflect.DeepEqual(got, []string{"g1", "g2", "g3"}) {
		t.Fatal(got)
	}
	must(t, m.CloneOffsets("g1", "g4", "T"))
	if got := m.Offsets.QueryAll("g4", "T"); !reflect.DeepEqual(got, map[int32]int64{0: 10, 1: 20}) {
		t.Fatal(got)
	}
	must(t, m.RemoveOffsets("", "g1"))
	if m.Offsets.Query("g1", "T", 0) != -1 || m.Offsets.Query("g1", "U", 0) != -1 {
		t.Fatal("remove by group")
	}
	must(t, m.RemoveOffsets("T", ""))
	if len(m.Offsets.WhichGroupByTopic("T")) != 0 {
		t.Fatal("remove by topic")
	}
	if tb := m.Offsets.Table(); len(tb) != 0 {
		t.Fatalf("left %v", tb)
	}
	if err := m.RemoveOffsets("", ""); !errors.Is(err, ErrBadOp) {
		t.Fatal("remove everything must be refused")
	}
}

func TestDataVersionBumps(t *testing.T) {
	m := openMem(t, vfs.NewMem())
	must(t, m.PutTopic(NewTopicConfig("T", 1)))
	dv := m.Topics.DataVersion()
	if dv.Counter != 1 || dv.Timestamp != fixedNow().UnixMilli() {
		t.Fatalf("dv %+v", dv)
	}
	must(t, m.Apply(Op{Kind: OpDeleteTopic, Topic: "T", Time: 7}))
	if dv := m.Topics.DataVersion(); dv.Counter != 2 || dv.Timestamp != 7 {
		t.Fatalf("op time must stamp the version: %+v", dv)
	}
	must(t, m.DeleteTopic("T")) // no-op
	if m.Topics.DataVersion().Counter != 2 {
		t.Fatal("no-op delete bumped the version")
	}
	must(t, m.CommitOffset("g", "T", 0, 1))
	must(t, m.CommitOffset("g", "T", 0, 0))
	if m.Offsets.DataVersion().Counter != 1 {
		t.Fatal("ignored commit bumped the version")
	}
}

func TestSystemTopicsAndGroups(t *testing.T) {
	m := openMem(t, vfs.NewMem())
	n := m.InitSystemTopics(SystemTopicOptions{BrokerClusterName: "DefaultCluster", BrokerName: "broker-a",
		AutoCreateTopicEnable: true, DefaultTopicQueueNums: 8, ClusterTopicEnable: true, BrokerTopicEnable: true})
	if n != 10 {
		t.Fatalf("created %d: %v", n, m.Topics.Names())
	}
	checks := []struct {
		name        string
		perm, queue int
	}{
		{"TBW102", 7, 8}, {"SELF_TEST_TOPIC", 6, 1}, {"DefaultCluster", 7, 16}, {"broker-a", 7, 1},
		{"RMQ_SYS_TRANS_HALF_TOPIC", 6, 1}, {"RMQ_SYS_TRANS_OP_HALF_TOPIC", 6, 1}, {"SCHEDULE_TOPIC_XXXX", 6, 18},
		{"OFFSET_MOVED_EVENT", 6, 1}, {"BenchmarkTest", 6, 1024}, {"DefaultCluster_REPLY_TOPIC", 6, 1},
	}
	for _, c := range checks {
		tc, ok := m.Topics.Get(c.name)
		if !ok || tc.Perm != c.perm || tc.ReadQueueNums != c.queue || tc.WriteQueueNums != c.queue {
			t.Errorf("%s: %+v", c.name, tc)
		}
	}
	// without autoCreateTopicEnable and with cluster/broker topics off
	m2 := openMem(t, vfs.NewMem())
	m2.InitSystemTopics(SystemTopicOptions{BrokerClusterName: "C", BrokerName: "b", TraceTopicEnable: true})
	if m2.Topics.Contains("TBW102") || !m2.Topics.Contains(TraceTopic) {
		t.Fatal(m2.Topics.Names())
	}
	if tc, _ := m2.Topics.Get("C"); tc.Perm != PermInherit {
		t.Fatalf("cluster topic perm %d", tc.Perm)
	}
	// existing entries win (file loaded before init)
	tc := NewTopicConfig("TBW102", 4)
	must(t, m2.PutTopic(tc))
	m2.InitSystemTopics(SystemTopicOptions{AutoCreateTopicEnable: true, DefaultTopicQueueNums: 8})
	if got, _ := m2.Topics.Get("TBW102"); got.ReadQueueNums != 4 {
		t.Fatal("init overwrote an existing topic")
	}
	if m.InitSystemGroups() != len(SystemGroups) || m.InitSystemGroups() != 0 || !m.Groups.Contains(ToolsConsumerGroup) {
		t.Fatal("system groups")
	}
}

func TestAutoCreate(t *testing.T) {
	m := openMem(t, vfs.NewMem())
	m.InitSystemTopics(SystemTopicOptions{BrokerClusterName: "C", BrokerName: "b", AutoCreateTopicEnable: true, DefaultTopicQueueNums: 8})
	tc, created, err := m.CreateTopicInSendMessage("NewTopic", "TBW102", 4, 0, true)
	if err != nil || !created || tc.Perm != 6 || tc.ReadQueueNums != 4 || tc.WriteQueueNums != 4 {
		t.Fatalf("%+v %v %v", tc, created, err)
	}
	if _, created, _ := m.CreateTopicInSendMessage("NewTopic", "TBW102", 4, 0, true); created {
		t.Fatal("created twice")
	}
	if tc, _, _ := m.CreateTopicInSendMessage("Big", "TBW102", 100, 0, true); tc.WriteQueueNums != 8 {
		t.Fatalf("queue count must be capped by TBW102: %d", tc.WriteQueueNums)
	}
	if _, _, err := m.CreateTopicInSendMessage("X", "TBW102", 4, 0, false); !errors.Is(err, ErrTopicNotExist) {
		t.Fatalf("autoCreateTopicEnable=false: %v", err)
	}
	if _, _, err := m.CreateTopicInSendMessage("X", "NoSuchDefault", 4, 0, true); !errors.Is(err, ErrTopicNotExist) {
		t.Fatal(err)
	}
	if _, _, err := m.CreateTopicInSendMessage("X", "SELF_TEST_TOPIC", 4, 0, true); !errors.Is(err, ErrTopicNotExist) {
		t.Fatal("non-inheritable default")
	}
	if _, _, err := m.CreateTopicInSendMessage("bad topic", "TBW102", 4, 0, true); err == nil {
		t.Fatal("invalid name")
	}
	rt := NewTopicConfig(RetryTopic("g"), 1)
	if _, created, err := m.CreateTopicIfAbsent(rt); err != nil || !created || !m.Topics.Contains("%RETRY%g") {
		t.Fatal(err)
	}
	if _, created, _ := m.CreateTopicIfAbsent(rt); created {
		t.Fatal("created twice")
	}

	if _, _, err := m.FindOrCreateGroup("g", false); !errors.Is(err, ErrGroupNotExist) {
		t.Fatal(err)
	}
	if g, created, err := m.FindOrCreateGroup("g", true); err != nil || !created || g.RetryMaxTimes != 16 {
		t.Fatal(err)
	}
	if _, created, err := m.FindOrCreateGroup("g", false); err != nil || created {
		t.Fatal(err)
	}
	if _, created, err := m.FindOrCreateGroup("CID_RMQ_SYS_X", false); err != nil || !created {
		t.Fatal("system groups are always created")
	}
	// topics and groups created by Submit are on disk at once
	fs := m.fs
	if s := readFile(t, fs, filepath.Join(dir, TopicsFile)); !strings.Contains(s, "%RETRY%g") {
		t.Fatal("topics.json not written")
	}
	if s := readFile(t, fs, filepath.Join(dir, SubscriptionGroupFile)); !strings.Contains(s, `"CID_RMQ_SYS_X"`) {
		t.Fatal("subscriptionGroup.json not written")
	}
}

func TestNames(t *testing.T) {
	for _, ok := range []string{"T", "%RETRY%g", "a|b", "A-b_9"} {
		if ValidateTopicName(ok) != nil {
			t.Error(ok)
		}
	}
	for _, bad := range []string{"", "a b", "a.b", "a/b", strings.Repeat("x", 128)} {
		if ValidateTopicName(bad) == nil {
			t.Error(bad)
		}
	}
	if ValidateGroupName("g-1") != nil || ValidateGroupName("g 1") == nil {
		t.Error("group names")
	}
	if PermString(7) != "RWX" || PermString(6) != "RW-" || PermString(4) != "R--" {
		t.Error("PermString")
	}
	if DLQTopic("g") != "%DLQ%g" || !IsSysConsumerGroup("CID_RMQ_SYS_TRANS") {
		t.Error("names")
	}
}

// TestProposer: with a proposer, Submit goes through it; ApplyAt records
// the applied index, which the files carry and Open reports.
func TestProposer(t *testing.T) {
	fs := vfs.NewMem()
	m := openMem(t, fs)
	var log [][]byte
	m.SetProposer(func(op Op) error {
		b, err := MarshalOp(op)
		if err != nil {
			return err
		}
		log = append(log, b)
		decoded, err := UnmarshalOp(b)
		if err != nil {
			return err
		}
		return m.ApplyAt(int64(len(log)), decoded)
	})
	must(t, m.PutTopic(NewTopicConfig("T", 2)))
	must(t, m.CommitOffset("g", "T", 1, 9))
	if len(log) != 2 || m.AppliedIndex() != 2 {
		t.Fatalf("log %d applied %d", len(log), m.AppliedIndex())
	}
	if vfs.Exists(fs, filepath.Join(dir, TopicsFile)) {
		t.Fatal("with a proposer, topics are not persisted synchronously")
	}
	must(t, m.Persist())
	m2 := openMem(t, fs)
	if m2.SnapshotIndex() != 2 || m2.AppliedIndex() != 2 {
		t.Fatalf("snapshot index %d", m2.SnapshotIndex())
	}
	// a follower replaying the whole log over the snapshot ends identical
	for i, b := range log {
		op, _ := UnmarshalOp(b)
		must(t, m2.ApplyAt(int64(i+1), op))
	}
	if !reflect.DeepEqual(m2.Offsets.Table(), m.Offsets.Table()) || !reflect.DeepEqual(m2.Topics.Names(), m.Topics.Names()) {
		t.Fatal("replay diverged")
	}
	m.SetProposer(nil)
	must(t, m.PutTopic(NewTopicConfig("U", 1)))
	if len(log) != 2 {
		t.Fatal("proposer not removed")
	}
	// Java-written files carry no index: the field is omitted in classic mode
	m3 := openMem(t, vfs.NewMem())
	must(t, m3.PutTopic(NewTopicConfig("T", 1)))
	if strings.Contains(string(m3.Topics.Encode(true)), "rmqdAppliedIndex") {
		t.Fatal("index written in classic mode")
	}
}

func TestStartStop(t *testing.T) {
	fs := vfs.NewMem()
	m := openMem(t, fs)
	m.Start(5 * time.Millisecond)
	must(t, m.CommitOffset("g", "T", 0, 1))
	path := filepath.Join(dir, ConsumerOffsetFile)
	deadline := time.Now().Add(5 * time.Second)
	for !vfs.Exists(fs, path) {
		if time.Now().After(deadline) {
			t.Fatal("periodic persist did not run")
		}
		time.Sleep(time.Millisecond)
	}
	must(t, m.CommitOffset("g", "T", 0, 2))
	must(t, m.Stop())
	if s := readFile(t, fs, path); !strings.Contains(s, `{0:2}`) {
		t.Fatalf("Stop did not persist: %s", s)
	}
	must(t, m.Stop()) // idempotent
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(Options{}); err == nil {
		t.Fatal("empty dir")
	}
	fs := &vfs.ErrorFS{FS: vfs.NewMem(), Inject: func(op vfs.Op, path string) error {
		if op == vfs.OpOpen && strings.HasSuffix(path, TopicsFile) {
			return vfs.ErrInjected
		}
		return nil
	}}
	if _, err := Open(Options{Dir: dir, FS: fs}); !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("I/O error must not be taken for a missing file: %v", err)
	}
}

func TestOSFS(t *testing.T) {
	d := filepath.Join(t.TempDir(), "config")
	m, err := Open(Options{Dir: d})
	must(t, err)
	must(t, m.PutTopic(NewTopicConfig("T", 1)))
	must(t, m.CommitOffset("g", "T", 0, 5))
	must(t, m.Stop())
	m2, err := Open(Options{Dir: d})
	must(t, err)
	if m2.Offsets.Query("g", "T", 0) != 5 || !m2.Topics.Contains("T") {
		t.Fatal("reload from disk")
	}
}

// GetWithoutAttributes is Get minus the attributes, and copies nothing
// (it runs for every message sent or pulled).
func TestGetWithoutAttributes(t *testing.T) {
	m := openMem(t, memWithTestdata(t))
	for _, name := range []string{"TopicA", "OrderedTopic", "%RETRY%groupA", "NoSuchTopic"} {
		full, ok1 := m.Topics.Get(name)
		bare, ok2 := m.Topics.GetWithoutAttributes(name)
		full.Attributes = nil
		if ok1 != ok2 || !reflect.DeepEqual(full, bare) {
			t.Fatalf("%s: Get %+v %v, GetWithoutAttributes %+v %v", name, full, ok1, bare, ok2)
		}
	}
	if n := testing.AllocsPerRun(100, func() { m.Topics.GetWithoutAttributes("OrderedTopic") }); n != 0 {
		t.Fatalf("GetWithoutAttributes allocates %v times", n)
	}
}

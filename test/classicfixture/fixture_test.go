package classicfixture

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestGoldenRecord compares EncodeRecord with a record laid out by hand,
// field by field at the offsets of protocol.md §5.2.
func TestClassicFixtureGoldenRecord(t *testing.T) {
	props := EncodeProperties(map[string]string{"TAGS": "TagA", "UNIQ_KEY": "7F0000011092000000000001", "KEYS": "k1 k2"})
	wantProps := "KEYS\x01k1 k2\x02TAGS\x01TagA\x02UNIQ_KEY\x017F0000011092000000000001\x02"
	if string(props) != wantProps {
		t.Fatalf("properties %q, want %q", props, wantProps)
	}
	got, err := EncodeRecord(RecordFields{
		QueueID: 3, Flag: 7, QueueOffset: 42, PhysicalOffset: 0x1122334455, SysFlag: 0,
		BornTimestamp: 1700000000000, BornHost: "192.168.0.2:50000",
		StoreTimestamp: 1700000000005, StoreHost: "127.0.0.1:10911",
		ReconsumeTimes: 2, PreparedTransactionOffset: 0,
		Body: []byte("hello"), Topic: "TestTopic", Properties: props,
	})
	if err != nil {
		t.Fatal(err)
	}
	total := 91 + 5 + 9 + len(wantProps) // protocol.md: 91 + n + t + p
	want := make([]byte, total)
	put32 := func(off int, v uint32) { binary.BigEndian.PutUint32(want[off:], v) }
	put64 := func(off int, v uint64) { binary.BigEndian.PutUint64(want[off:], v) }
	put32(0, uint32(total))
	put32(4, 0xDAA320A7)
	put32(8, crc32.ChecksumIEEE([]byte("hello"))&0x7FFFFFFF)
	put32(12, 3)
	put32(16, 7)
	put64(20, 42)
	put64(28, 0x1122334455)
	put32(36, 0)
	put64(40, 1700000000000)
	copy(want[48:], []byte{192, 168, 0, 2})
	put32(52, 50000)
	put64(56, 1700000000005)
	copy(want[64:], []byte{127, 0, 0, 1})
	put32(68, 10911)
	put32(72, 2)
	put64(76, 0)
	put32(84, 5)
	copy(want[88:], "hello")
	want[93] = 9
	copy(want[94:], "TestTopic")
	binary.BigEndian.PutUint16(want[103:], uint16(len(wantProps)))
	copy(want[105:], wantProps)
	if !bytes.Equal(got, want) {
		t.Fatalf("record\n got %x\nwant %x", got, want)
	}
	// The CRC of "hello" (0x3610a686) has bit 31 clear, so masking changes nothing there.
	if crc32.ChecksumIEEE([]byte("hello")) != 0x3610a686 {
		t.Fatal("crc32 of hello")
	}
}

func TestClassicFixtureIPv6HostsSetSysFlag(t *testing.T) {
	rec, err := EncodeRecord(RecordFields{BornHost: "[::1]:5", StoreHost: "[fe80::1]:10911", Topic: "T", Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if sys := binary.BigEndian.Uint32(rec[36:]); sys != 0x30 {
		t.Fatalf("sysflag %#x, want 0x30", sys)
	}
	if want := 91 + 12 + 12 + 1 + 1; len(rec) != want {
		t.Fatalf("IPv6 record is %d bytes, want %d", len(rec), want)
	}
	id, _ := OffsetMsgID("[fe80::1]:10911", 5)
	if len(id) != 56 {
		t.Fatalf("IPv6 offset msgId %q: %d chars, want 56", id, len(id))
	}
}

func TestClassicFixtureOffsetMsgIDAndHashes(t *testing.T) {
	id, err := OffsetMsgID("127.0.0.1:10911", 0)
	if err != nil || id != "7F00000100002A9F0000000000000000" {
		t.Fatalf("offset msgId %q %v", id, err)
	}
	for s, want := range map[string]int32{
		"":      0,
		"hello": 99162322,
		"TagA":  2598919,
		"é":     233,
		"😀":     0xD83D*31 + 0xDE00, // two UTF-16 code units
		// overflow wraps as int32 in Java
		"TopicA#ORDER-000000000001": javaHashSlow("TopicA#ORDER-000000000001"),
	} {
		if got := JavaStringHashCode(s); got != want {
			t.Errorf("hashCode(%q) = %d, want %d", s, got, want)
		}
	}
	if TagsCode("") != 0 || TagsCode("TagA") != 2598919 {
		t.Error("TagsCode")
	}
	if got := TagsCode("tag-10"); got != -881290958 { // negative hash, sign-extended to int64
		t.Errorf("TagsCode(tag-10) = %d", got)
	}
	u := UniqKey([]byte{10, 1, 2, 3}, 0x1092, 0x1B6D3586, 1700000000000, 0x0102)
	if len(u) != 32 || !strings.HasPrefix(u, "0A01020310921B6D3586") || !strings.HasSuffix(u, "0102") || strings.ToUpper(u) != u {
		t.Fatalf("uniq key %q", u)
	}
}

func javaHashSlow(s string) int32 {
	var h int64
	for _, r := range s { // ASCII only
		h = (31*h + int64(r)) & 0xFFFFFFFF
	}
	return int32(uint32(h))
}

// rec is a record read back by the independent reader below.
type rec struct {
	size                int32
	queueID             int32
	queueOffset, phy    int64
	storeTs             int64
	storeHost           []byte
	body                []byte
	topic               string
	props               map[string]string
	crc, crcWant, magic uint32
}

func parse(t *testing.T, b []byte) rec {
	t.Helper()
	be := binary.BigEndian
	r := rec{size: int32(be.Uint32(b)), magic: be.Uint32(b[4:]), crc: be.Uint32(b[8:]), queueID: int32(be.Uint32(b[12:])),
		queueOffset: int64(be.Uint64(b[20:])), phy: int64(be.Uint64(b[28:])), storeTs: int64(be.Uint64(b[56:])),
		storeHost: b[64:72]}
	n := int(be.Uint32(b[84:]))
	r.body = b[88 : 88+n]
	r.crcWant = crc32.ChecksumIEEE(r.body) & 0x7FFFFFFF
	p := 88 + n
	tl := int(b[p])
	r.topic = string(b[p+1 : p+1+tl])
	p += 1 + tl
	pl := int(be.Uint16(b[p:]))
	r.props = map[string]string{}
	for _, kv := range strings.Split(string(b[p+2:p+2+pl]), "\x02") {
		if k, v, ok := strings.Cut(kv, "\x01"); ok {
			r.props[k] = v
		}
	}
	if p+2+pl != int(r.size) {
		t.Fatalf("record at %d: fields end at %d, TOTALSIZE %d", r.phy, p+2+pl, r.size)
	}
	return r
}

func testSpec(n int) Spec {
	s := Spec{
		CommitLogFileSize:    4096,
		ConsumeQueueFileSize: 10 * CQUnitSize,
		StoreHost:            "127.0.0.1:10911",
		ClusterName:          "DefaultCluster",
		BrokerName:           "broker-a",
		SystemTopics:         true,
		Topics:               []Topic{{Name: "TopicA", Queues: 3}, {Name: "TopicB", Queues: 2, MultiTag: true}},
		ConsumerOffsets: []ConsumerOffset{
			{Group: "g1", Topic: "TopicA", Offsets: map[int32]int64{0: 5, 1: 0, 2: 12}},
			{Group: "g2", Topic: "TopicB", Offsets: map[int32]int64{0: 3}},
		},
		DelayOffsets:  map[int]int64{1: 0, 3: 7},
		BaseTimestamp: 1700000000000,
	}
	for i := 0; i < n; i++ {
		topic, q := "TopicA", int32(i%3)
		if i%4 == 3 {
			topic, q = "TopicB", int32(i%2)
		}
		m := Message{Topic: topic, QueueID: q, Body: bytes.Repeat([]byte{byte('a' + i%26)}, 50+(i*37)%300),
			Tags: []string{"TagA", "TagB", ""}[i%3], Keys: []string{fmt.Sprintf("order-%d", i), "common"},
			Properties: map[string]string{"user": strconv.Itoa(i)}}
		if i == 7 {
			m.UniqKey = "-"
			m.Tags = "标签" // non-ASCII: Java hashes UTF-16 units
		}
		s.Messages = append(s.Messages, m)
	}
	return s
}

// TestWriteLayout reads the written store back with a reader written from
// the layout: file names and sizes, BLANK markers, records, consume-queue
// units, checkpoint, abort and lock.
func TestClassicFixtureWriteLayout(t *testing.T) {
	dir := t.TempDir()
	spec := testSpec(120)
	spec.Abort = true
	m, err := Write(dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.CommitLogFiles) < 4 {
		t.Fatalf("only %d commitlog files", len(m.CommitLogFiles))
	}
	names, _ := os.ReadDir(filepath.Join(dir, "commitlog"))
	if len(names) != len(m.CommitLogFiles) {
		t.Fatalf("%d files on disk, manifest %d", len(names), len(m.CommitLogFiles))
	}
	var got []rec
	for i, e := range names {
		from := int64(i) * 4096
		if e.Name() != fmt.Sprintf("%020d", from) || len(e.Name()) != 20 {
			t.Fatalf("file %d named %s", i, e.Name())
		}
		data, err := os.ReadFile(filepath.Join(dir, "commitlog", e.Name()))
		if err != nil || len(data) != 4096 {
			t.Fatalf("file %s: %d bytes, %v", e.Name(), len(data), err)
		}
		last := i == len(names)-1
		pos := 0
		for {
			if pos+8 > len(data) {
				t.Fatalf("file %s: ran off the end at %d", e.Name(), pos)
			}
			size := int(binary.BigEndian.Uint32(data[pos:]))
			magic := binary.BigEndian.Uint32(data[pos+4:])
			if magic == BlankMagic {
				if last || size != 4096-pos || size < 8 {
					t.Fatalf("file %s: BLANK at %d size %d (last %v)", e.Name(), pos, size, last)
				}
				if m.CommitLogFiles[i].Used != int64(pos) || !m.CommitLogFiles[i].Blank {
					t.Fatalf("manifest file %d: %+v, BLANK at %d", i, m.CommitLogFiles[i], pos)
				}
				break
			}
			if size == 0 && magic == 0 {
				if !last {
					t.Fatalf("full file %s ends at %d without a BLANK marker", e.Name(), pos)
				}
				if from+int64(pos) != m.MaxPhyOffset || !bytes.Equal(data[pos:], make([]byte, 4096-pos)) {
					t.Fatalf("last file ends at %d, manifest max %d, or tail not zero", from+int64(pos), m.MaxPhyOffset)
				}
				break
			}
			if magic != MagicV1 || pos+size+8 > 4096 {
				t.Fatalf("file %s: bad record at %d (size %d magic %#x)", e.Name(), pos, size, magic)
			}
			r := parse(t, data[pos:pos+size])
			if r.phy != from+int64(pos) || r.crc != r.crcWant {
				t.Fatalf("record at %d: PHYSICALOFFSET %d, crc %x want %x", from+int64(pos), r.phy, r.crc, r.crcWant)
			}
			got = append(got, r)
			pos += size
		}
	}
	if len(got) != len(m.Messages) || len(got) != 120 {
		t.Fatalf("read %d records, manifest %d", len(got), len(m.Messages))
	}
	for i, r := range got {
		w := m.Messages[i]
		if r.phy != w.PhysicalOffset || r.queueOffset != w.QueueOffset || r.topic != w.Topic || r.queueID != w.QueueID ||
			!bytes.Equal(r.body, w.Body) || r.props["UNIQ_KEY"] != w.UniqKey || r.props["TAGS"] != w.Tags ||
			r.props["KEYS"] != strings.Join(w.Keys, " ") || r.props["user"] != strconv.Itoa(i) ||
			r.props["CLUSTER"] != "DefaultCluster" || r.storeTs != 1700000000000+int64(i) {
			t.Fatalf("record %d: %+v\nmanifest %+v", i, r, w)
		}
		id, _ := OffsetMsgID("127.0.0.1:10911", r.phy)
		if w.OffsetMsgID != id || !strings.HasPrefix(id, strings.ToUpper(hex.EncodeToString(r.storeHost))) {
			t.Fatalf("record %d: msgId %s, want %s", i, w.OffsetMsgID, id)
		}
		if (w.Topic == "TopicB") != (w.SysFlag&0x2 != 0) {
			t.Fatalf("record %d: MULTI_TAG sysflag %#x for %s", i, w.SysFlag, w.Topic)
		}
	}
	if got[7].props["UNIQ_KEY"] != "" || m.Messages[7].TagsCode != int64(JavaStringHashCode("标签")) {
		t.Fatalf("message 7: %v", got[7].props)
	}

	// Consume queues: unit k of every queue points at the record with queue offset k.
	for k, max := range m.QueueMaxOffsets {
		dir := filepath.Join(dir, "consumequeue", k.Topic, strconv.Itoa(int(k.QueueID)))
		files, _ := os.ReadDir(dir)
		if want := (max*CQUnitSize + 199) / 200; int64(len(files)) != want {
			t.Fatalf("%v: %d cq files, want %d", k, len(files), want)
		}
		var units []byte
		for i, f := range files {
			if f.Name() != fmt.Sprintf("%020d", i*200) {
				t.Fatalf("%v: cq file %s", k, f.Name())
			}
			b, _ := os.ReadFile(filepath.Join(dir, f.Name()))
			if len(b) != 200 {
				t.Fatalf("%v: cq file %s is %d bytes", k, f.Name(), len(b))
			}
			units = append(units, b...)
		}
		recs := m.ByQueue(k.Topic, k.QueueID)
		if int64(len(recs)) != max {
			t.Fatalf("%v: %d records, max offset %d", k, len(recs), max)
		}
		for i, r := range recs {
			u := units[i*CQUnitSize:]
			phy, size, tags := int64(binary.BigEndian.Uint64(u)), int32(binary.BigEndian.Uint32(u[8:])), int64(binary.BigEndian.Uint64(u[12:]))
			if r.QueueOffset != int64(i) || phy != r.PhysicalOffset || size != r.Size || tags != TagsCode(r.Tags) {
				t.Fatalf("%v unit %d: (%d,%d,%d), record %+v", k, i, phy, size, tags, r)
			}
		}
		if rest := units[max*CQUnitSize:]; !bytes.Equal(rest, make([]byte, len(rest))) {
			t.Fatalf("%v: bytes after the last unit are not zero", k)
		}
	}

	ck, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil || len(ck) != 4096 || int64(binary.BigEndian.Uint64(ck)) != 1700000000119 ||
		int64(binary.BigEndian.Uint64(ck[8:])) != 1700000000119 {
		t.Fatalf("checkpoint: %d bytes %v", len(ck), err)
	}
	for _, f := range []string{"abort", "lock"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() != 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "index")); !os.IsNotExist(err) {
		t.Fatalf("index dir without Spec.Index: %v", err)
	}
	spec.Abort = false
	if _, err := Write(dir, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "abort")); !os.IsNotExist(err) {
		t.Fatalf("abort file left with Abort=false: %v", err)
	}
}

// TestConfigFiles: fastjson shapes with unquoted integer keys; the text
// parses as JSON once the keys are quoted.
func TestClassicFixtureConfigFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, testSpec(10)); err != nil {
		t.Fatal(err)
	}
	read := func(name string) (string, map[string]any) {
		b, err := os.ReadFile(filepath.Join(dir, "config", name))
		if err != nil {
			t.Fatal(err)
		}
		quoted := regexp.MustCompile(`([{,])(-?\d+):`).ReplaceAllString(string(b), `$1"$2":`)
		var v map[string]any
		if err := json.Unmarshal([]byte(quoted), &v); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
		return string(b), v
	}
	text, off := read("consumerOffset.json")
	if !strings.Contains(text, "\t\t\"TopicA@g1\":{0:5,1:0,2:12\n\t\t}") || !strings.Contains(text, "\"TopicB@g2\":{0:3\n\t\t}") {
		t.Fatalf("consumerOffset.json:\n%s", text)
	}
	if off["offsetTable"].(map[string]any)["TopicA@g1"].(map[string]any)["2"].(float64) != 12 {
		t.Fatalf("offsets: %v", off)
	}
	text, _ = read("delayOffset.json")
	if text != "{\n\t\"offsetTable\":{1:0,3:7\n\t}\n}" {
		t.Fatalf("delayOffset.json:\n%s", text)
	}
	text, topics := read("topics.json")
	table := topics["topicConfigTable"].(map[string]any)
	for _, n := range []string{"TopicA", "TopicB", "TBW102", "SCHEDULE_TOPIC_XXXX", "%RETRY%g1", "%RETRY%g2", "DefaultCluster", "DefaultCluster_REPLY_TOPIC", "broker-a"} {
		if table[n] == nil {
			t.Errorf("topics.json has no %s", n)
		}
	}
	a := table["TopicA"].(map[string]any)
	if a["readQueueNums"].(float64) != 3 || a["perm"].(float64) != 6 || a["topicFilterType"] != "SINGLE_TAG" ||
		table["TopicB"].(map[string]any)["topicFilterType"] != "MULTI_TAG" {
		t.Errorf("TopicA: %v", a)
	}
	if !strings.Contains(text, "\n\t\"topicConfigTable\":{\n\t\t\"") || !strings.Contains(text, "\t\t\t\"perm\":6,\n") {
		t.Errorf("topics.json is not fastjson pretty text:\n%s", text)
	}
	_, groups := read("subscriptionGroup.json")
	g := groups["subscriptionGroupTable"].(map[string]any)
	if g["g1"] == nil || g["g2"] == nil || g["g1"].(map[string]any)["groupName"] != "g1" {
		t.Errorf("subscriptionGroup.json: %v", groups)
	}
}

// TestIndexFiles follows the hash chains of the written index (small
// files, so they roll) and finds every message by UNIQ_KEY and by key.
func TestClassicFixtureIndexFiles(t *testing.T) {
	dir := t.TempDir()
	spec := testSpec(60)
	spec.Index = &IndexSpec{HashSlotNum: 64, IndexNum: 50}
	m, err := Write(dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	const slots, num = 64, 50
	size := int64(40 + slots*4 + num*20)
	if len(m.IndexFiles) < 3 {
		t.Fatalf("index files %v: expected rolls", m.IndexFiles)
	}
	type file struct {
		data                   []byte
		beginTs, endPhy, count int64
	}
	var files []file
	names := append([]string(nil), m.IndexFiles...)
	if !sort.StringsAreSorted(names) {
		t.Fatalf("index files not in name order: %v", names)
	}
	for _, n := range names {
		if len(n) != 17 {
			t.Fatalf("index file name %q", n)
		}
		b, err := os.ReadFile(filepath.Join(dir, "index", n))
		if err != nil || int64(len(b)) != size {
			t.Fatalf("index %s: %d bytes %v", n, len(b), err)
		}
		be := binary.BigEndian
		files = append(files, file{b, int64(be.Uint64(b[0:])), int64(be.Uint64(b[24:])), int64(be.Uint32(b[36:]))})
	}
	if files[0].count != num || files[len(files)-1].endPhy != m.Messages[len(m.Messages)-1].PhysicalOffset {
		t.Fatalf("headers: first count %d, last endPhy %d", files[0].count, files[len(files)-1].endPhy)
	}
	lookup := func(key string) []int64 {
		h := JavaStringHashCode(key)
		if h < 0 {
			h = -h
		}
		var out []int64
		for _, f := range files {
			be := binary.BigEndian
			e := int32(be.Uint32(f.data[40+int64(h%slots)*4:]))
			for e > 0 && int64(e) < f.count {
				p := 40 + slots*4 + int64(e)*20
				if int32(be.Uint32(f.data[p:])) == h {
					out = append(out, int64(be.Uint64(f.data[p+4:])))
				}
				e = int32(be.Uint32(f.data[p+16:]))
			}
		}
		return out
	}
	for _, r := range m.Messages {
		keys := append([]string(nil), r.Keys...)
		if r.UniqKey != "" {
			keys = append(keys, r.UniqKey)
		}
		for _, k := range keys {
			found := false
			for _, phy := range lookup(r.Topic + "#" + k) {
				found = found || phy == r.PhysicalOffset
			}
			if !found {
				t.Fatalf("key %s#%s of record at %d not in the index", r.Topic, k, r.PhysicalOffset)
			}
		}
	}
	if n := len(lookup("TopicA#common")); n != 45 {
		t.Fatalf("TopicA#common: %d entries, want 45", n)
	}
}

func TestClassicFixtureWriteRejects(t *testing.T) {
	for name, spec := range map[string]Spec{
		"unknown topic":  {Messages: []Message{{Topic: "X"}}},
		"bad queue":      {Topics: []Topic{{Name: "T", Queues: 1}}, Messages: []Message{{Topic: "T", QueueID: 1}}},
		"too big":        {CommitLogFileSize: 100, Topics: []Topic{{Name: "T"}}, Messages: []Message{{Topic: "T", Body: make([]byte, 100)}}},
		"bad property":   {Topics: []Topic{{Name: "T"}}, Messages: []Message{{Topic: "T", Properties: map[string]string{"a": "b\x02"}}}},
		"time goes back": {Topics: []Topic{{Name: "T"}}, Messages: []Message{{Topic: "T", StoreTimestamp: 5}, {Topic: "T", StoreTimestamp: 4}}},
		"bad store host": {StoreHost: "nohost"},
	} {
		if _, err := Write(t.TempDir(), spec); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestClassicFixtureDelayedMessage: a delayed message is parked in
// SCHEDULE_TOPIC_XXXX queue level-1 with REAL_TOPIC/REAL_QID/DELAY and its
// unit's tagsCode is the delivery time.
func TestClassicFixtureDelayedMessage(t *testing.T) {
	dir := t.TempDir()
	m, err := Write(dir, Spec{
		Topics:       []Topic{{Name: "T", Queues: 2}},
		DelayOffsets: map[int]int64{2: 0},
		Messages: []Message{
			{Topic: "T", QueueID: 1, Body: []byte("now"), StoreTimestamp: 1700000000000},
			{Topic: "T", QueueID: 1, Body: []byte("later"), Tags: "X", DelayLevel: 2, StoreTimestamp: 1700000000001},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := m.Messages[1]
	if r.Topic != ScheduleTopic || r.QueueID != 1 || r.QueueOffset != 0 || r.RealTopic != "T" || r.RealQueueID != 1 ||
		r.DeliverTimestamp != 1700000005001 || r.TagsCode != 1700000005001 {
		t.Fatalf("delayed record %+v", r)
	}
	p := parse(t, r.Bytes)
	if p.topic != ScheduleTopic || p.queueID != 1 || p.props["REAL_TOPIC"] != "T" || p.props["REAL_QID"] != "1" || p.props["DELAY"] != "2" || p.props["TAGS"] != "X" {
		t.Fatalf("delayed record fields %+v", p)
	}
	u, err := os.ReadFile(filepath.Join(dir, "consumequeue", ScheduleTopic, "1", FileName(0)))
	if err != nil || int64(binary.BigEndian.Uint64(u[12:])) != 1700000005001 || int64(binary.BigEndian.Uint64(u)) != r.PhysicalOffset {
		t.Fatalf("schedule unit: %v", err)
	}
	if m.QueueMaxOffsets[QueueKey{"T", 1}] != 1 || m.QueueMaxOffsets[QueueKey{ScheduleTopic, 1}] != 1 {
		t.Fatalf("queue offsets %v", m.QueueMaxOffsets)
	}
	topics, _ := os.ReadFile(filepath.Join(dir, "config", "topics.json"))
	if !strings.Contains(string(topics), `"topicName":"SCHEDULE_TOPIC_XXXX"`) {
		t.Fatalf("topics.json without the schedule topic:\n%s", topics)
	}
	bare, err := Write(t.TempDir(), Spec{ClusterName: "C", Topics: []Topic{{Name: "T"}}, Messages: []Message{{Topic: "T", Bare: true, Body: []byte("b")}}})
	if err != nil || len(bare.Messages[0].Properties) != 0 || bare.Messages[0].UniqKey != "" || bare.Messages[0].Size != 91+1+1 {
		t.Fatalf("bare message: %+v %v", bare.Messages, err)
	}
	if _, err := Write(t.TempDir(), Spec{Topics: []Topic{{Name: "T"}}, Messages: []Message{{Topic: "T", DelayLevel: 19}}}); err == nil {
		t.Fatal("delay level 19 of 18 accepted")
	}
}

// TestClassicFixtureExpiredHead: retention removed the oldest commitlog
// files, the consume-queue files wholly below them and old index files.
func TestClassicFixtureExpiredHead(t *testing.T) {
	dir := t.TempDir()
	spec := testSpec(300)
	spec.ConsumeQueueFileSize = 4 * CQUnitSize
	spec.Index = &IndexSpec{HashSlotNum: 64, IndexNum: 50}
	spec.ExpiredCommitLogFiles = 3
	m, err := Write(dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	if m.MinPhyOffset != 3*4096 || m.CommitLogFiles[0].From != m.MinPhyOffset {
		t.Fatalf("min phy %d, first file %+v", m.MinPhyOffset, m.CommitLogFiles[0])
	}
	names, _ := os.ReadDir(filepath.Join(dir, "commitlog"))
	if names[0].Name() != FileName(3*4096) || len(names) != len(m.CommitLogFiles) {
		t.Fatalf("commitlog files start at %s", names[0].Name())
	}
	expired := 0
	for _, r := range m.Messages {
		if r.Expired != (r.PhysicalOffset < m.MinPhyOffset) {
			t.Fatalf("record at %d: Expired %v", r.PhysicalOffset, r.Expired)
		}
		if r.Expired {
			expired++
		}
	}
	if expired == 0 {
		t.Fatal("nothing expired")
	}
	for k, min := range m.QueueMinOffsets {
		recs := m.ByQueue(k.Topic, k.QueueID)
		if min > 0 && (!recs[min-1].Expired || (min < int64(len(recs)) && recs[min].Expired)) {
			t.Fatalf("%v: min offset %d", k, min)
		}
		qdir := filepath.Join(dir, "consumequeue", k.Topic, strconv.Itoa(int(k.QueueID)))
		files, _ := os.ReadDir(qdir)
		first, _ := strconv.ParseInt(files[0].Name(), 10, 64)
		// The first remaining file holds min's unit or, if every unit
		// expired, it is the queue's last file.
		if fo := first / CQUnitSize; fo > min || (fo+4 <= min && len(files) > 1) {
			t.Fatalf("%v: first cq file %s, min offset %d", k, files[0].Name(), min)
		}
		for _, f := range files {
			b, _ := os.ReadFile(filepath.Join(qdir, f.Name()))
			from, _ := strconv.ParseInt(f.Name(), 10, 64)
			for i := 0; i+CQUnitSize <= len(b); i += CQUnitSize {
				phy := int64(binary.BigEndian.Uint64(b[i:]))
				size := binary.BigEndian.Uint32(b[i+8:])
				if size == 0 {
					break
				}
				if q := from/CQUnitSize + int64(i/CQUnitSize); recs[q].PhysicalOffset != phy {
					t.Fatalf("%v unit %d: phy %d, record %d", k, q, phy, recs[q].PhysicalOffset)
				}
			}
		}
	}
	ix, _ := os.ReadDir(filepath.Join(dir, "index"))
	if len(m.IndexFiles) != len(ix) {
		t.Fatalf("manifest lists %d index files, %d on disk", len(m.IndexFiles), len(ix))
	}
	for i, f := range ix {
		b, _ := os.ReadFile(filepath.Join(dir, "index", f.Name()))
		if end := int64(binary.BigEndian.Uint64(b[24:])); i < len(ix)-1 && end < m.MinPhyOffset {
			t.Fatalf("index file %s ends at %d below the minimum %d", f.Name(), end, m.MinPhyOffset)
		}
	}
	spec.ExpiredCommitLogFiles = 0
	all, err := Write(t.TempDir(), spec)
	if err != nil || len(all.IndexFiles) <= len(ix) {
		t.Fatalf("without expiry %d index files, with %d (%v)", len(all.IndexFiles), len(ix), err)
	}
}

// TestClassicFixtureTornTail: the last record is half on disk, its unit is
// in the consume queue.
func TestClassicFixtureTornTail(t *testing.T) {
	dir := t.TempDir()
	spec := testSpec(20)
	spec.TornTail, spec.Abort = true, true
	m, err := Write(dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Messages[len(m.Messages)-1]
	if !r.Torn || m.Messages[len(m.Messages)-2].Torn {
		t.Fatal("Torn not set on the last record only")
	}
	last := m.CommitLogFiles[len(m.CommitLogFiles)-1]
	data, _ := os.ReadFile(filepath.Join(dir, "commitlog", last.Name))
	at := r.PhysicalOffset - last.From
	if !bytes.Equal(data[at:at+int64(r.Size)/2], r.Bytes[:r.Size/2]) || !bytes.Equal(data[at+int64(r.Size)/2:], make([]byte, int64(len(data))-at-int64(r.Size)/2)) {
		t.Fatal("torn record: want its first half, then zeros")
	}
	k := QueueKey{r.Topic, r.QueueID}
	u, _ := os.ReadFile(filepath.Join(dir, "consumequeue", r.Topic, strconv.Itoa(int(r.QueueID)), FileName(0)))
	if p := int64(binary.BigEndian.Uint64(u[(m.QueueMaxOffsets[k]-1)*CQUnitSize:])); p != r.PhysicalOffset {
		t.Fatalf("torn record's unit points at %d, want %d", p, r.PhysicalOffset)
	}
}

// TestClassicFixtureUndispatchedTail: the last records have no units and
// no index entries; the checkpoint's logics time is the last dispatched one.
func TestClassicFixtureUndispatchedTail(t *testing.T) {
	dir := t.TempDir()
	spec := testSpec(40)
	spec.UndispatchedTail, spec.Abort = 7, true
	spec.Index = &IndexSpec{HashSlotNum: 64, IndexNum: 500}
	m, err := Write(dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	units := 0
	err = filepath.Walk(filepath.Join(dir, "consumequeue"), func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(path)
			for i := 0; i+CQUnitSize <= len(b) && binary.BigEndian.Uint32(b[i+8:]) != 0; i += CQUnitSize {
				units++
			}
		}
		return err
	})
	if err != nil || units != 33 {
		t.Fatalf("%d units, want 33 (%v)", units, err)
	}
	for i, r := range m.Messages {
		if r.Undispatched != (i >= 33) {
			t.Fatalf("record %d: Undispatched %v", i, r.Undispatched)
		}
	}
	ck, _ := os.ReadFile(filepath.Join(dir, "checkpoint"))
	be := binary.BigEndian
	if int64(be.Uint64(ck)) != m.Messages[39].StoreTimestamp || int64(be.Uint64(ck[8:])) != m.Messages[32].StoreTimestamp ||
		int64(be.Uint64(ck[16:])) != m.Messages[32].StoreTimestamp {
		t.Fatalf("checkpoint %d %d %d", be.Uint64(ck), be.Uint64(ck[8:]), be.Uint64(ck[16:]))
	}
	ix, _ := os.ReadFile(filepath.Join(dir, "index", m.IndexFiles[0]))
	if end := int64(be.Uint64(ix[24:])); end != m.Messages[32].PhysicalOffset {
		t.Fatalf("index endPhyOffset %d, want %d", end, m.Messages[32].PhysicalOffset)
	}
}

// TestClassicFixtureDeterministic: the same Spec (with BaseTimestamp set)
// gives byte-identical stores, so a test can give every replica of a group
// the same classic prefix (and diverge one on purpose).
func TestClassicFixtureDeterministic(t *testing.T) {
	spec := testSpec(80)
	spec.Index = &IndexSpec{HashSlotNum: 64, IndexNum: 50}
	spec.ConsumerOffsets = append(spec.ConsumerOffsets, ConsumerOffset{Group: "g3", Topic: "TopicA", Offsets: map[int32]int64{2: 1, 0: 4, 1: 9}})
	read := func(dir string) map[string][]byte {
		out := map[string][]byte{}
		err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				b, rerr := os.ReadFile(path)
				rel, _ := filepath.Rel(dir, path)
				out[rel] = b
				return rerr
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if _, err := Write(d, spec); err != nil {
			t.Fatal(err)
		}
	}
	fa, fb := read(a), read(b)
	if len(fa) != len(fb) || len(fa) < 10 {
		t.Fatalf("%d files vs %d", len(fa), len(fb))
	}
	for name, data := range fa {
		if !bytes.Equal(data, fb[name]) {
			t.Fatalf("%s differs between two writes of the same spec", name)
		}
	}
}

// TestClassicFixtureTransaction: a committed transactional message is a
// half record, the committed copy pointing at it, and an op record.
func TestClassicFixtureTransaction(t *testing.T) {
	dir := t.TempDir()
	m, err := Write(dir, Spec{ClusterName: "C", Topics: []Topic{{Name: "T", Queues: 2}},
		Messages: []Message{{Topic: "T", QueueID: 1, Body: []byte("before")},
			{Topic: "T", QueueID: 1, Body: []byte("tx"), Tags: "TagT", Keys: []string{"tx-key"}, Transaction: true},
			{Topic: "T", QueueID: 0, Body: []byte("pending"), TransactionPending: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Messages) != 5 {
		t.Fatalf("%d records, want 5", len(m.Messages))
	}
	if p := m.Messages[4]; p.Topic != TransHalfTopic || p.QueueOffset != 1 || string(p.Body) != "pending" {
		t.Fatalf("pending half %+v", p)
	}
	half, commit, op := m.Messages[1], m.Messages[2], m.Messages[3]
	ph, pc, po := parse(t, half.Bytes), parse(t, commit.Bytes), parse(t, op.Bytes)
	if half.Topic != TransHalfTopic || half.QueueID != 0 || half.SysFlag != 0 || ph.props["REAL_TOPIC"] != "T" || ph.props["REAL_QID"] != "1" ||
		ph.props["TRAN_MSG"] != "true" || ph.props["PGROUP"] == "" || half.UniqKey == "" {
		t.Fatalf("half %+v", ph)
	}
	if commit.Topic != "T" || commit.QueueID != 1 || commit.QueueOffset != 1 || commit.SysFlag&0xC != 0x8 ||
		commit.PreparedTransactionOffset != half.PhysicalOffset || int64(binary.BigEndian.Uint64(commit.Bytes[76:])) != half.PhysicalOffset ||
		commit.UniqKey != half.UniqKey || pc.props["REAL_TOPIC"] != "" || pc.props["TRAN_MSG"] != "true" || string(pc.body) != "tx" {
		t.Fatalf("commit %+v %+v", commit, pc)
	}
	if op.Topic != TransOpHalfTopic || string(po.body) != "0" || po.props["TAGS"] != "d" || po.props["UNIQ_KEY"] != "" || po.props["CLUSTER"] != "" {
		t.Fatalf("op %+v", po)
	}
	topics, _ := os.ReadFile(filepath.Join(dir, "config", "topics.json"))
	if !strings.Contains(string(topics), `"topicName":"RMQ_SYS_TRANS_OP_HALF_TOPIC"`) || !strings.Contains(string(topics), `"topicName":"RMQ_SYS_TRANS_HALF_TOPIC"`) {
		t.Fatalf("topics.json without the transaction topics")
	}
}

// TestClassicFixtureCompressed: SYSFLAG 0x1 and a zlib body whose CRC is
// that of the stored (compressed) bytes.
func TestClassicFixtureCompressed(t *testing.T) {
	body := bytes.Repeat([]byte("compress me "), 1000)
	m, err := Write(t.TempDir(), Spec{Topics: []Topic{{Name: "T"}}, Messages: []Message{{Topic: "T", Body: body, Compressed: true}}})
	if err != nil {
		t.Fatal(err)
	}
	r := m.Messages[0]
	p := parse(t, r.Bytes)
	if r.SysFlag&1 == 0 || !bytes.Equal(r.Body, body) || len(p.body) >= len(body) || p.crc != p.crcWant {
		t.Fatalf("compressed record: sysflag %#x, stored %d bytes", r.SysFlag, len(p.body))
	}
	zr, err := zlib.NewReader(bytes.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("inflate: %v", err)
	}
}

// TestClassicFixtureIndependentOfStore: the fixture is written from the
// published layout only; importing rmqd's own packages (store/ above all)
// would let a layout bug there pass unnoticed.
func TestClassicFixtureIndependentOfStore(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("glob: %v", err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			if p := strings.Trim(imp.Path.Value, `"`); strings.HasPrefix(p, "github.com/rmqd/rmqd") {
				t.Errorf("%s imports %s: the fixture must not use rmqd's packages", f, p)
			}
		}
	}
}

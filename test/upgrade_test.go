package test

// Issue 6: in-place upgrade of a classic store to DLedger mode. A store
// written by test/classicfixture (as a 4.x broker leaves it) is copied into
// each replica's storePathRootDir of a 3-replica group, which then starts
// with enableDLegerCommitLog=true: every old message must be found by queue
// offset, physical offset, offset msgId, UNIQ_KEY, keys and tags (the
// classic fixture checks), committed consumer offsets are served, groups
// resume at them, new messages continue the queues above the old
// commitlog, and a restart of the group keeps it all.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
	"github.com/rmqd/rmqd/test/classicfixture"
)

// upgradeOverrides: the fixture's file sizes (DLedger data files have the
// commitlog's size, so the divide is a data file boundary).
func upgradeOverrides(spec classicfixture.Spec) map[string]string {
	over := map[string]string{
		"mappedFileSizeCommitLog":    strconv.FormatInt(spec.CommitLogFileSize, 10),
		"mappedFileSizeConsumeQueue": strconv.FormatInt(spec.ConsumeQueueFileSize, 10),
	}
	if ix := spec.Index; ix != nil && ix.HashSlotNum > 0 {
		over["maxHashSlotNum"] = strconv.Itoa(int(ix.HashSlotNum))
		over["maxIndexNum"] = strconv.Itoa(int(ix.IndexNum))
	}
	return over
}

// copyTree copies the regular files of src into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, in); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// classicGroup writes the classic fixture of spec and starts a DLedger
// group with its file sizes (to be given the fixture by installClassic).
func classicGroup(t *testing.T, spec classicfixture.Spec) (*dlGroup, classicfixture.Manifest, string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "classic")
	m, err := classicfixture.Write(src, spec)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return startDledgerGroup(t, upgradeOverrides(spec)), m, src
}

// installClassic kills every replica of g and replaces its store with a
// copy of the classic store src (an empty store for those in without).
func installClassic(t *testing.T, g *dlGroup, src string, without ...*dlReplica) {
	t.Helper()
	for _, r := range g.reps {
		g.kill(r)
	}
	for _, r := range g.reps {
		dir := filepath.Join(g.dir, r.id)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(without, r) {
			copyTree(t, src, dir)
		}
	}
}

// divergedGroup is a stopped group whose replicas hold the classic
// fixture, except that the last classic record is missing from the third
// one's copy (a lagging slave's store), which it returns.
func divergedGroup(t *testing.T) (*dlGroup, classicfixture.Manifest, *dlReplica) {
	t.Helper()
	g, m, src := classicGroup(t, cfxSpec(300, true, false))
	installClassic(t, g, src)
	r := g.reps[2]
	last := m.Messages[len(m.Messages)-1]
	size := m.CommitLogFileSize
	name := filepath.Join(g.dir, r.id, "commitlog", classicfixture.FileName(last.PhysicalOffset-last.PhysicalOffset%size))
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, last.Size), last.PhysicalOffset%size); err != nil {
		t.Fatal(err)
	}
	return g, m, r
}

// startUpgradedGroup starts a DLedger group, stops it, replaces every
// replica's store with a copy of the classic fixture and starts the group
// again over them (the first start after the switch).
func startUpgradedGroup(t *testing.T, spec classicfixture.Spec) (*dlGroup, classicfixture.Manifest) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "classic")
	m, err := classicfixture.Write(src, spec)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	if len(m.CommitLogFiles) < 3 {
		t.Fatalf("fixture has %d commitlog files, want several", len(m.CommitLogFiles))
	}
	g := startDledgerGroup(t, upgradeOverrides(spec))
	installClassic(t, g, src)
	for _, r := range g.reps {
		g.start(r)
	}
	for _, r := range g.reps {
		waitTCP(t, r.proc, r.addr, 30*time.Second)
	}
	g.waitHealthy(30 * time.Second)
	return g, m
}

func TestUpgradeClassicFixtureToDLedgerGroup(t *testing.T) {
	t.Parallel()
	spec := cfxSpec(600, true, false)
	g, m := startUpgradedGroup(t, spec)
	// Every replica derived the same divide, the end of the last classic file.
	last := m.CommitLogFiles[len(m.CommitLogFiles)-1]
	for _, r := range g.reps {
		d, ok, err := store.ReadDivide(nil, filepath.Join(g.dir, r.id))
		if err != nil || !ok || d%spec.CommitLogFileSize != 0 || d < m.MaxPhyOffset || d-m.MaxPhyOffset >= spec.CommitLogFileSize {
			t.Fatalf("%s: divide %d %v %v (old log ends at %d, last file %+v)", r.id, d, ok, err, m.MaxPhyOffset, last)
		}
	}
	leader := g.leader()
	c := g.view(t, leader)
	c.checkCommittedOffsets(t, m)
	c.checkOldMessages(t, m)

	newOrders := c.cfxSendNew(t, m, cfxOrders, 4, 3, "TagA")
	newEvents := c.cfxSendNew(t, m, cfxEvents, 2, 2, "TagB")
	colA := c.cfxConsume(t, cfxGroupA, cfxOrders, "*")
	colB := c.cfxConsume(t, cfxGroupB, cfxEvents, "TagA || TagB")
	cfxCheckResume(t, colA, m, cfxGroupA, cfxOrders, nil, newOrders)
	cfxCheckResume(t, colB, m, cfxGroupB, cfxEvents, map[string]bool{"TagA": true, "TagB": true}, newEvents)

	// A restart of the whole group (kill -9) changes nothing: old messages
	// where they were, the new ones after them.
	for _, r := range g.reps {
		g.kill(r)
	}
	for _, r := range g.reps {
		g.restart(r)
	}
	leader = g.waitHealthy(30 * time.Second)
	c = g.view(t, leader)
	c.checkOldMessages(t, m)
	for q, bodies := range newOrders {
		k := classicfixture.QueueKey{Topic: cfxOrders, QueueID: q}
		got := c.cfxPullRange(t, cfxOrders, q, m.QueueMaxOffsets[k], m.QueueMaxOffsets[k]+int64(len(bodies)), "*")
		if len(got) != len(bodies) {
			t.Fatalf("%s:%d after restart: %d new messages, want %d", cfxOrders, q, len(got), len(bodies))
		}
	}
}

// TestUpgradeKilledDuringFirstStart: the fixture has an abort file and no
// index files (the classic recovery rebuilds them); each replica is killed
// (-9) at several points of its first start in DLedger mode, then started
// for good: the upgrade completes and every replica has the same divide.
func TestUpgradeKilledDuringFirstStart(t *testing.T) {
	t.Parallel()
	spec := cfxSpec(400, false, true)
	src := filepath.Join(t.TempDir(), "classic")
	m, err := classicfixture.Write(src, spec)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	over := upgradeOverrides(spec)
	over["maxHashSlotNum"], over["maxIndexNum"] = "4096", "1000"
	g := startDledgerGroup(t, over)
	installClassic(t, g, src)
	for i, r := range g.reps {
		for _, d := range []time.Duration{5, 30, 80, 150} {
			g.start(r)
			time.Sleep((d + time.Duration(10*i)) * time.Millisecond)
			g.kill(r)
		}
	}
	for _, r := range g.reps {
		g.restart(r)
	}
	leader := g.waitHealthy(30 * time.Second)
	var divide int64 = -1
	for _, r := range g.reps {
		d, ok, err := store.ReadDivide(nil, filepath.Join(g.dir, r.id))
		if err != nil || !ok || (divide >= 0 && d != divide) {
			t.Fatalf("%s: divide %d %v %v, others %d", r.id, d, ok, err, divide)
		}
		divide = d
	}
	c := g.view(t, leader)
	c.checkCommittedOffsets(t, m)
	c.checkOldMessages(t, m)
	newOrders := c.cfxSendNew(t, m, cfxOrders, 4, 2, "TagA")
	colA := c.cfxConsume(t, cfxGroupA, cfxOrders, "*")
	cfxCheckResume(t, colA, m, cfxGroupA, cfxOrders, nil, newOrders)
}

// TestUpgradeDivergedReplicaRefused: one replica's classic copy lacks the
// last record (a lagging slave's store). The two others form the group and
// its leader appends the classic-prefix fingerprint; the third refuses its
// classic prefix with an error naming the peer and the remedy, and never
// serves its old records.
func TestUpgradeDivergedReplicaRefused(t *testing.T) {
	t.Parallel()
	g, m, bad := divergedGroup(t)
	for _, r := range g.reps[:2] {
		g.start(r)
	}
	for _, r := range g.reps[:2] {
		waitTCP(t, r.proc, r.addr, 30*time.Second)
	}
	leader := g.waitHealthy(30 * time.Second)
	c := g.view(t, leader)
	c.checkCommittedOffsets(t, m)
	g.start(bad)
	eventually(t, 30*time.Second, "the diverged replica refuses", func() bool {
		out := bad.proc.out.String()
		return strings.Contains(out, "classic commitlog prefix differs from peer "+leader.id) && strings.Contains(out, "remedy")
	})
	// The group still serves the old messages (from the agreeing replicas).
	c.checkOldMessages(t, m)
}

// TestUpgradeRmqdClassicStoreToDLedgerGroup: a store written by rmqd itself
// in classic mode (bin/broker, killed -9: abort file, unflushed tail
// recovered) becomes a 3-replica DLedger group's: every old message at its
// queue offset and physical offset, the committed offset kept, new
// messages continuing the queues.
func TestUpgradeRmqdClassicStoreToDLedgerGroup(t *testing.T) {
	t.Parallel()
	const topic, group, size = "RmqdClassic", "cgRmqdClassic", 64 << 10
	c := startCluster(t, map[string]string{"mappedFileSizeCommitLog": strconv.Itoa(size), "brokerName": "dl-broker"})
	c.createTopic(t, topic, 2)
	p := c.newProducer(t, producer.WithQueueSelector(producer.NewManualQueueSelector()))
	type sent struct {
		body string
		qoff int64
		phy  int64
	}
	old := map[int32][]sent{}
	for i := 0; i < 300; i++ {
		q := int32(i % 2)
		body := fmt.Sprintf("rmqd-old-%04d-%s", i, strings.Repeat("z", 100+i%300))
		msg := primitive.NewMessage(topic, []byte(body)).WithTag("T").WithKeys([]string{fmt.Sprintf("rk-%d", i)})
		msg.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: c.brokerName, QueueId: int(q)}
		var res *primitive.SendResult
		var err error
		eventually(t, 10*time.Second, "classic send", func() bool {
			res, err = p.SendSync(context.Background(), msg)
			return err == nil && res.Status == primitive.SendOK
		})
		phy, _ := strconv.ParseInt(res.OffsetMsgID[len(res.OffsetMsgID)-16:], 16, 64)
		old[q] = append(old[q], sent{body, res.QueueOffset, phy})
	}
	// Classic dispatch runs behind the sends: pullAll reads the max offset
	// first and pulls nothing (so creates no group) while it is still 0.
	eventually(t, 10*time.Second, "queue 1 dispatched", func() bool { return c.maxOffset(t, topic, 1) == int64(len(old[1])) })
	c.pullAll(t, group, topic, 1) // creates the group (autoCreateSubscriptionGroup)
	r := c.brokerRequest(protocol.UpdateConsumerOffset, remoting.FieldsOf("consumerGroup", group, "topic", topic, "queueId", "1", "commitOffset", "42"), nil)
	if r.Code != protocol.Success {
		t.Fatalf("UPDATE_CONSUMER_OFFSET: %d %s", r.Code, r.Remark)
	}
	time.Sleep(1200 * time.Millisecond) // flushConsumerOffsetInterval
	c.killBroker()

	g := startDledgerGroup(t, map[string]string{"mappedFileSizeCommitLog": strconv.Itoa(size)})
	for _, r := range g.reps {
		g.kill(r)
	}
	for _, r := range g.reps {
		dir := filepath.Join(g.dir, r.id)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		copyTree(t, filepath.Join(c.dir, "store"), dir)
		os.Remove(filepath.Join(dir, "lock"))
	}
	for _, r := range g.reps {
		g.start(r)
	}
	for _, r := range g.reps {
		waitTCP(t, r.proc, r.addr, 30*time.Second)
	}
	leader := g.waitHealthy(30 * time.Second)
	v := g.view(t, leader)
	for q, msgs := range old {
		got := v.pullAll(t, "cgReader", topic, int(q))
		if len(got) != len(msgs) {
			t.Fatalf("queue %d: %d old messages, sent %d", q, len(got), len(msgs))
		}
		for i, m := range got {
			if string(m.Body) != msgs[i].body || m.QueueOffset != msgs[i].qoff || m.CommitLogOffset != msgs[i].phy {
				t.Fatalf("queue %d #%d: got offset %d phy %d, sent %d %d", q, i, m.QueueOffset, m.CommitLogOffset, msgs[i].qoff, msgs[i].phy)
			}
		}
	}
	r = v.brokerRequest(protocol.QueryConsumerOffset, remoting.FieldsOf("consumerGroup", group, "topic", topic, "queueId", "1"), nil)
	if r.Code != protocol.Success || r.ExtFields.Get("offset") != "42" {
		t.Fatalf("QUERY_CONSUMER_OFFSET: %d %v", r.Code, r.ExtFields)
	}
	p2 := v.newProducer(t, producer.WithQueueSelector(producer.NewManualQueueSelector()))
	msg := primitive.NewMessage(topic, []byte("rmqd-new")).WithTag("T")
	msg.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: v.brokerName, QueueId: 0}
	var res *primitive.SendResult
	var err error
	eventually(t, 10*time.Second, "send after the upgrade", func() bool {
		res, err = p2.SendSync(context.Background(), msg)
		return err == nil && res.Status == primitive.SendOK
	})
	if want := int64(len(old[0])); res.QueueOffset != want {
		t.Fatalf("new message at queue offset %d, want %d", res.QueueOffset, want)
	}
}

// TestUpgradeReplicaWithoutClassicFiles: n0 and n1 are upgraded from the
// classic fixture, n2 starts with an empty store. n2 cannot lead first (it
// does not know where the group's log begins), follows from the divide on,
// says it has no classic files, and once it holds the entries it can lead:
// after kill -9 of the leader it takes over, serves the messages written
// before and after, continues the queues, and answers old classic offsets
// with a clean not-found.
func TestUpgradeReplicaWithoutClassicFiles(t *testing.T) {
	t.Parallel()
	spec := cfxSpec(300, true, false)
	g, m, src := classicGroup(t, spec)
	empty := g.reps[2]
	installClassic(t, g, src, empty)
	// The empty replica starts first: it must not lead the group.
	g.start(empty)
	waitTCP(t, empty.proc, empty.addr, 30*time.Second)
	time.Sleep(2 * dlElectionMaxMs * time.Millisecond)
	for _, r := range g.reps[:2] {
		g.start(r)
	}
	for _, r := range g.reps[:2] {
		waitTCP(t, r.proc, r.addr, 30*time.Second)
	}
	leader := g.waitHealthy(30 * time.Second)
	if leader == empty {
		t.Fatal("the replica without classic files leads before it holds the group's log")
	}
	divide, ok, err := store.ReadDivide(nil, filepath.Join(g.dir, leader.id))
	if err != nil || !ok {
		t.Fatalf("divide: %v %v", ok, err)
	}
	c := g.view(t, leader)
	before := c.cfxSendNew(t, m, cfxOrders, 2, 3, "TagA")
	eventually(t, 30*time.Second, "the empty replica says it has no classic files", func() bool {
		return strings.Contains(empty.proc.out.String(), "this replica has no classic commitlog files")
	})
	leader = g.waitHealthy(30 * time.Second)

	// kill -9 the leader; the empty replica leads (a transfer if the other won).
	g.kill(leader)
	lead := func(not *dlReplica) *cluster {
		t.Helper()
		if l := g.waitLeader(30*time.Second, not); l != empty {
			r, err := g.invoke(l.addr, protocol.RaftTransferLeadership, remoting.FieldsOf("target", empty.id), nil, 15*time.Second)
			if err != nil || r.Code != protocol.Success {
				t.Fatalf("transfer to %s: %v %v", empty.id, r, err)
			}
		}
		eventually(t, 30*time.Second, "the replica without classic files leads", func() bool { return g.leader() == empty })
		return g.view(t, empty)
	}
	v := lead(leader)

	// checkNew: bodies are readable through v at their queue offsets from base.
	checkNew := func(v *cluster, bodies map[int32][]string, base map[classicfixture.QueueKey]int64) {
		t.Helper()
		for q, bs := range bodies {
			k := classicfixture.QueueKey{Topic: cfxOrders, QueueID: q}
			got := v.cfxPullRange(t, cfxOrders, q, base[k], base[k]+int64(len(bs)), "*")
			if len(got) != len(bs) {
				t.Fatalf("%s:%d via %s: %d messages from %d, want %d", cfxOrders, q, empty.id, len(got), base[k], len(bs))
			}
			for i, b := range bs {
				if !strings.Contains(string(got[i]), b) || cfxQueueOffset(got[i]) != base[k]+int64(i) {
					t.Fatalf("%s:%d #%d via %s: record at queue offset %d does not hold %q", cfxOrders, q, i, empty.id, cfxQueueOffset(got[i]), b)
				}
			}
		}
	}
	// checkOld: classic messages are a clean not-found through v, never garbage.
	checkOld := func(v *cluster) {
		t.Helper()
		for q := int32(0); q < 2; q++ {
			k := classicfixture.QueueKey{Topic: cfxOrders, QueueID: q}
			p := v.cfxPullOnce(t, cfxOrders, q, m.QueueMinOffsets[k], 8, "*")
			if p.code == protocol.Success || len(p.records) != 0 || p.minOffset != m.QueueMaxOffsets[k] {
				t.Fatalf("pull of old offset %d of %s:%d via %s: code %d, %d records, minOffset %d (want %d)",
					m.QueueMinOffsets[k], cfxOrders, q, empty.id, p.code, len(p.records), p.minOffset, m.QueueMaxOffsets[k])
			}
		}
		for i, r := range m.Messages {
			if r.Expired || i%37 != 0 {
				continue
			}
			resp := v.brokerRequest(protocol.ViewMessageByID, remoting.FieldsOf("offset", strconv.FormatInt(r.PhysicalOffset, 10)), nil)
			if resp.Code == protocol.Success || len(resp.Body) != 0 {
				t.Fatalf("VIEW_MESSAGE_BY_ID of old offset %d via %s: code %d, %d bytes", r.PhysicalOffset, empty.id, resp.Code, len(resp.Body))
			}
		}
	}

	// Written before: readable through it at the leader's queue offsets.
	baseBefore, baseAfter := map[classicfixture.QueueKey]int64{}, map[classicfixture.QueueKey]int64{}
	for k, n := range m.QueueMaxOffsets {
		baseBefore[k], baseAfter[k] = n, n
	}
	checkNew(v, before, baseBefore)
	// Written through it: the queues continue.
	for q, bs := range before {
		baseAfter[classicfixture.QueueKey{Topic: cfxOrders, QueueID: q}] += int64(len(bs))
	}
	m2 := m
	m2.QueueMaxOffsets = baseAfter
	after := v.cfxSendNew(t, m2, cfxOrders, 2, 2, "TagB")
	checkNew(v, after, baseAfter)
	checkOld(v)

	// The killed replica rejoins; then kill -9 of the whole group and a
	// restart: the replica without classic files keeps its queues (first
	// unit at the leader's queue offset) and leads again.
	g.restart(leader)
	g.waitHealthy(30 * time.Second)
	for _, r := range g.reps {
		g.kill(r)
	}
	for _, r := range g.reps {
		g.restart(r)
	}
	g.waitHealthy(30 * time.Second)
	v = lead(nil)
	checkNew(v, before, baseBefore)
	checkNew(v, after, baseAfter)
	checkOld(v)
	if out := empty.proc.out.String(); strings.Contains(out, "panic") {
		t.Fatalf("panic on %s", empty.id)
	}
	t.Logf("divide %d; %s leads after kill -9 of %s", divide, empty.id, leader.id)
}

// logLine reports whether out has a line holding every one of parts.
func logLine(out string, parts ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// TestUpgradeDivergedReplicaCannotLead: the diverged replica (its classic
// copy lacks the last record) starts first and campaigns before the
// others are up. The agreeing replicas refuse it their (pre-)votes, as
// soon as they run, because its classic-prefix fingerprint differs: it
// never leads, the two agreeing ones form the group, and both sides log
// the peer, the fingerprints and the remedy.
func TestUpgradeDivergedReplicaCannotLead(t *testing.T) {
	t.Parallel()
	g, m, bad := divergedGroup(t)
	// It campaigns every 100-150 ms, well before the others' first timeout.
	b, err := os.ReadFile(bad.conf)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer("dLegerHeartbeatIntervalMs="+strconv.Itoa(dlHeartbeatMs)+"\n", "dLegerHeartbeatIntervalMs=20\n",
		"dLegerElectionTimeoutMs="+strconv.Itoa(dlElectionMs)+"\n", "dLegerElectionTimeoutMs=100\n",
		"dLegerElectionTimeoutMaxMs="+strconv.Itoa(dlElectionMaxMs)+"\n", "dLegerElectionTimeoutMaxMs=150\n").Replace(string(b))
	if conf == string(b) {
		t.Fatalf("election timeouts not found in %s", bad.conf)
	}
	if err := os.WriteFile(bad.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start(bad)
	waitTCP(t, bad.proc, bad.addr, 30*time.Second)
	eventually(t, 10*time.Second, "the diverged replica campaigns", func() bool {
		return strings.Contains(bad.proc.out.String(), `"msg":"campaigning"`)
	})
	for _, r := range g.reps[:2] {
		g.start(r)
	}
	for _, r := range g.reps[:2] {
		waitTCP(t, r.proc, r.addr, 30*time.Second)
	}
	var leader *dlReplica
	deadline := time.Now().Add(30 * time.Second)
	for stable := 0; stable < 20; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no leader among the agreeing replicas")
		}
		if rt := g.runtime(bad); rt != nil && rt["dledgerRole"] == "LEADER" {
			t.Fatalf("the diverged replica %s leads (term %s)", bad.id, rt["dledgerTerm"])
		}
		if leader = g.leader(); leader != nil {
			stable++
		}
	}
	if leader == bad {
		t.Fatal("the diverged replica leads")
	}
	// Both sides name the peer, the fingerprints and the remedy.
	eventually(t, 10*time.Second, "the diverged replica's refusal logged", func() bool {
		out := bad.proc.out.String()
		return logLine(out, "refuses our candidacy", `"peer":"n`, "peerFingerprint", "remedy") ||
			logLine(out, "refusing the vote of a candidate whose group fingerprint differs", `"peer":"n`, "remedy")
	})
	// The store side: it follows, and refuses its classic prefix naming the leader.
	eventually(t, 30*time.Second, "the diverged replica refuses its classic prefix", func() bool {
		out := bad.proc.out.String()
		return strings.Contains(out, "classic commitlog prefix differs from peer "+leader.id) && strings.Contains(out, "remedy")
	})
	refused := func() bool {
		for _, r := range g.reps[:2] {
			if logLine(r.proc.out.String(), "refusing the vote of a candidate whose group fingerprint differs", `"peer":"`+bad.id+`"`, "remedy") {
				return true
			}
		}
		return false
	}
	if !refused() {
		// Its early campaigns did not reach the others (a reconnect backoff
		// of its transport, on a loaded machine): make it campaign now, past
		// the leader lease, by a leadership transfer to it. It must not win.
		done := make(chan struct{})
		go func() {
			defer close(done)
			g.invoke(leader.addr, protocol.RaftTransferLeadership, remoting.FieldsOf("target", bad.id), nil, 15*time.Second)
		}()
		for end := time.Now().Add(20 * time.Second); !refused() && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if rt := g.runtime(bad); rt != nil && rt["dledgerRole"] == "LEADER" {
				t.Fatalf("the diverged replica %s leads after a transfer to it (term %s)", bad.id, rt["dledgerTerm"])
			}
		}
		<-done
		if !refused() {
			t.Fatalf("no agreeing replica logged refusing %s", bad.id)
		}
		if leader = g.waitLeader(30*time.Second, nil); leader == bad {
			t.Fatal("the diverged replica leads")
		}
	}
	c := g.view(t, leader)
	c.checkCommittedOffsets(t, m)
	c.checkOldMessages(t, m)
}

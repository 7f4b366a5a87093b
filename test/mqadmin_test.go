package test

// End-to-end tests of bin/mqadmin against bin/namesrv and bin/broker
// (classic mode) started by the harness: every tier-1 and tier-2 command,
// the exact Java table headers (ecosystem.md §1.1, RocketMQ's tools
// printf formats), the values the tables report, and the error paths
// (unreachable name server or broker, unknown topic or group: one line on
// stderr and a non-zero exit).

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

func init() { rlog.SetLogLevel("error") }

var (
	mqadminOnce sync.Once
	mqadminPath string
	mqadminErr  error
)

// mqadminBin builds cmd/mqadmin once, next to the harness's binaries.
func mqadminBin(t *testing.T) string {
	t.Helper()
	dir := binaries(t)
	mqadminOnce.Do(func() {
		mqadminPath = filepath.Join(dir, "mqadmin")
		out, err := exec.Command("go", "build", "-o", mqadminPath, "../cmd/mqadmin").CombinedOutput()
		if err != nil {
			mqadminErr = fmt.Errorf("go build mqadmin: %v\n%s", err, out)
		}
	})
	if mqadminErr != nil {
		t.Fatal(mqadminErr)
	}
	return mqadminPath
}

type mqResult struct {
	stdout, stderr string
	code           int
}

// mqRun runs bin/mqadmin with args and the given environment additions
// (NAMESRV_ADDR is never inherited from the test's environment).
func mqRun(t *testing.T, env []string, args ...string) mqResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mqadminBin(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NAMESRV_ADDR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("mqadmin %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return mqResult{out.String(), errb.String(), code}
}

// mq runs a command against the cluster's name server and requires success.
func (c *cluster) mq(t *testing.T, args ...string) string {
	t.Helper()
	r := mqRun(t, nil, append(args, "-n", c.ns)...)
	if r.code != 0 {
		t.Fatalf("mqadmin %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// mqFail runs a command that must fail with one line on stderr.
func mqFail(t *testing.T, env []string, args ...string) mqResult {
	t.Helper()
	r := mqRun(t, env, args...)
	if r.code == 0 {
		t.Fatalf("mqadmin %v: exit 0, want failure\nstdout:\n%s", args, r.stdout)
	}
	assertOneLine(t, r.stderr)
	return r
}

func assertOneLine(t *testing.T, stderr string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) != 1 || lines[0] == "" {
		t.Fatalf("stderr must be exactly one line, got %d:\n%s", len(lines), stderr)
	}
	for _, bad := range []string{"goroutine ", "panic", ".go:"} {
		if strings.Contains(stderr, bad) {
			t.Fatalf("stderr looks like a stack trace: %q", stderr)
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func assertHeader(t *testing.T, out, want string) {
	t.Helper()
	if got := firstLine(out); got != want {
		t.Fatalf("header mismatch\n got: %q\nwant: %q\nfull output:\n%s", got, want, out)
	}
}

// rowsAfterHeader returns the non-empty lines after the first, split on blanks.
func rowsAfterHeader(out string) [][]string {
	var rows [][]string
	for i, line := range strings.Split(out, "\n") {
		if i == 0 {
			continue
		}
		if strings.TrimSpace(line) == "" {
			break
		}
		rows = append(rows, strings.Fields(line))
	}
	return rows
}

// lineValue finds "prefix<value>" in out and returns the trimmed value.
func lineValue(t *testing.T, out, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(strings.TrimPrefix(line, prefix))
		}
	}
	t.Fatalf("no line starting with %q in:\n%s", prefix, out)
	return ""
}

// Java's headers, built from RocketMQ's printf formats.
var (
	hdrClusterList = fmt.Sprintf("%-22s  %-22s  %-4s  %-22s %-16s  %16s  %30s  %-22s  %-11s  %-12s  %-8s  %-10s",
		"#Cluster Name", "#Broker Name", "#BID", "#Addr", "#Version", "#InTPS(LOAD)", "#OutTPS(LOAD)",
		"#Timer(Progress)", "#PCWait(ms)", "#Hour", "#SPACE", "#ACTIVATED")
	hdrClusterMore = fmt.Sprintf("%-16s  %-32s %14s %14s %14s %14s",
		"#Cluster Name", "#Broker Name", "#InTotalYest", "#OutTotalYest", "#InTotalToday", "#OutTotalToday")
	hdrTopicStatus = fmt.Sprintf("%-32s  %-4s  %-20s  %-20s    %s",
		"#Broker Name", "#QID", "#Min Offset", "#Max Offset", "#Last Updated")
	hdrProgress = fmt.Sprintf("%-64s  %-32s  %-4s  %-20s  %-20s  %-20s %-20s%s",
		"#Topic", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Diff", "#Inflight", "#LastTime")
	hdrProgressIP = fmt.Sprintf("%-64s  %-32s  %-4s  %-20s  %-20s  %-20s %-20s %-20s%s",
		"#Topic", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Client IP", "#Diff", "#Inflight", "#LastTime")
	hdrProgressAll = fmt.Sprintf("%-64s  %-6s  %-24s %-5s  %-14s  %-7s  %s",
		"#Group", "#Count", "#Version", "#Type", "#Model", "#TPS", "#Diff Total")
	hdrStatsAll = fmt.Sprintf("%-64s  %-64s %12s %11s %11s %14s %14s",
		"#Topic", "#Consumer Group", "#Accumulation", "#InTPS", "#OutTPS", "#InMsg24Hour", "#OutMsg24Hour")
	hdrBrokerConsumeStats = fmt.Sprintf("%-64s  %-64s  %-32s  %-4s  %-20s  %-20s  %-20s  %s",
		"#Topic", "#Group", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Diff", "#LastTime")
	hdrTopicRouteList = fmt.Sprintf("%-45s %-32s %-50s %-10s %-11s %-5s",
		"#ClusterName", "#BrokerName", "#BrokerAddrs", "#ReadQueue", "#WriteQueue", "#Perm")
	hdrTopicListC      = fmt.Sprintf("%-20s  %-48s  %-48s", "#Cluster Name", "#Topic", "#Consumer Group")
	hdrQueryByKey      = fmt.Sprintf("%-50s %4s %40s", "#Message ID", "#QID", "#Offset")
	hdrSend            = fmt.Sprintf("%-32s  %-4s  %-20s    %s", "#Broker Name", "#QID", "#Send Result", "#MsgId")
	hdrConsumerConn    = fmt.Sprintf("%-36s %-22s %-10s %s", "#ClientId", "#ClientAddr", "#Language", "#Version")
	hdrResetOffset     = fmt.Sprintf("%-40s  %-40s  %-40s", "#brokerName", "#queueId", "#offset")
	hdrResetOffsetOld  = fmt.Sprintf("%-20s  %-20s  %-20s  %-20s  %-20s  %-20s", "#brokerName", "#queueId", "#brokerOffset", "#consumerOffset", "#timestampOffset", "#resetOffset")
	reRouteListDataRow = regexp.MustCompile(`^DefaultCluster\s+broker-a\s+\{0=127\.0\.0\.1:\d+\}\s+(\d+)\s+(\d+)\s+(\d+)\s*$`)
)

// routePerm returns (read, write, perm) of broker-a from topicRoute -l.
func (c *cluster) routeQueues(t *testing.T, topic string) (int, int, int) {
	t.Helper()
	out := c.mq(t, "topicRoute", "-t", topic, "-l")
	assertHeader(t, out, hdrTopicRouteList)
	m := reRouteListDataRow.FindStringSubmatch(strings.Split(out, "\n")[1])
	if m == nil {
		t.Fatalf("topicRoute -l row not recognised:\n%s", out)
	}
	r, _ := strconv.Atoi(m[1])
	w, _ := strconv.Atoi(m[2])
	p, _ := strconv.Atoi(m[3])
	return r, w, p
}

// progress runs consumerProgress -g and returns the rows' broker offsets
// sum and the reported diff total.
func (c *cluster) progress(t *testing.T, group string) (brokerSum, diffTotal int64, out string) {
	t.Helper()
	out = c.mq(t, "consumerProgress", "-g", group)
	assertHeader(t, out, hdrProgress)
	for _, row := range rowsAfterHeader(out) {
		n, _ := strconv.ParseInt(row[3], 10, 64)
		brokerSum += n
		cons, _ := strconv.ParseInt(row[4], 10, 64)
		diff, _ := strconv.ParseInt(row[5], 10, 64)
		if diff != n-cons {
			t.Fatalf("row diff %d != broker %d - consumer %d:\n%s", diff, n, cons, out)
		}
	}
	diffTotal, _ = strconv.ParseInt(lineValue(t, out, "Consume Diff Total: "), 10, 64)
	return brokerSum, diffTotal, out
}

func TestMqadminErrorsAndHelp(t *testing.T) {
	mqadminBin(t)
	// No arguments and help: the command list.
	r := mqRun(t, nil)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "The most commonly used mqadmin commands are:") {
		t.Fatalf("bare mqadmin: exit %d\n%s", r.code, r.stdout)
	}
	for _, name := range []string{"clusterList", "updateTopic", "topicList", "topicRoute", "topicStatus", "consumerProgress",
		"updateSubGroup", "brokerStatus", "queryMsgById", "queryMsgByKey", "resetOffsetByTime", "consumerConnection",
		"statsAll", "getBrokerConfig", "updateBrokerConfig", "deleteTopic", "deleteSubGroup", "updateTopicPerm",
		"wipeWritePerm", "addWritePerm", "producerConnection", "brokerConsumeStats", "queryMsgByOffset",
		"queryMsgByUniqueKey", "printMsg", "sendMessage", "consumeMessage", "getNamesrvConfig"} {
		if !regexp.MustCompile(`(?m)^   ` + name + ` +\S`).MatchString(r.stdout) {
			t.Errorf("command list lacks %s", name)
		}
		h := mqRun(t, nil, name, "-h")
		if h.code != 0 || !strings.HasPrefix(h.stdout, "usage: mqadmin "+name) || !strings.Contains(h.stdout, "-n,--namesrvAddr") {
			t.Errorf("%s -h: exit %d\n%s%s", name, h.code, h.stdout, h.stderr)
		}
	}
	if h := mqRun(t, nil, "help", "topicRoute"); h.code != 0 || !strings.Contains(h.stdout, "-t,--topic <arg>") {
		t.Fatalf("help topicRoute: exit %d\n%s", h.code, h.stdout)
	}
	// Usage errors: exit 2, one line.
	if r := mqFail(t, nil, "noSuchCommand"); r.code != 2 {
		t.Fatalf("unknown command: exit %d", r.code)
	}
	if r := mqFail(t, nil, "topicRoute", "-n", "127.0.0.1:1"); r.code != 2 || !strings.Contains(r.stderr, "missing required option: t") {
		t.Fatalf("missing -t: exit %d %q", r.code, r.stderr)
	}
	if r := mqFail(t, nil, "clusterList"); !strings.Contains(r.stderr, "NAMESRV_ADDR") {
		t.Fatalf("no name server: %q", r.stderr)
	}
	// Unreachable name server, by flag and by environment.
	closed := fmt.Sprintf("127.0.0.1:%d", freePort(t, false))
	for _, args := range [][]string{{"clusterList", "-n", closed}, {"topicList", "-n", closed}, {"topicRoute", "-t", "T", "-n", closed}} {
		if r := mqFail(t, nil, args...); r.code != 1 || !strings.Contains(r.stderr, closed) {
			t.Fatalf("%v: exit %d %q", args, r.code, r.stderr)
		}
	}
	// commons-cli forms: attached value and long names.
	if r := mqFail(t, nil, "topicRoute", "-tT", "-n"+closed); r.code != 1 || !strings.Contains(r.stderr, closed) {
		t.Fatalf("attached option values: exit %d %q", r.code, r.stderr)
	}
	if r := mqFail(t, nil, "topicRoute", "--topic", "T", "--namesrvAddr="+closed); r.code != 1 || !strings.Contains(r.stderr, closed) {
		t.Fatalf("long option names: exit %d %q", r.code, r.stderr)
	}
	if r := mqFail(t, []string{"NAMESRV_ADDR=" + closed}, "clusterList"); !strings.Contains(r.stderr, closed) {
		t.Fatalf("NAMESRV_ADDR not used: %q", r.stderr)
	}
	// Unreachable broker.
	if r := mqFail(t, nil, "brokerStatus", "-b", closed, "-n", closed); r.code != 1 {
		t.Fatalf("unreachable broker: exit %d", r.code)
	}
}

func TestMqadminAgainstBroker(t *testing.T) {
	c := startCluster(t, nil)
	mqadminBin(t)
	start := time.Now()

	// clusterList: the broker as master (BID 0), active.
	out := c.mq(t, "clusterList")
	assertHeader(t, out, hdrClusterList)
	rows := rowsAfterHeader(out)
	if len(rows) != 1 || rows[0][0] != "DefaultCluster" || rows[0][1] != "broker-a" || rows[0][2] != "0" ||
		rows[0][3] != c.broker || rows[0][len(rows[0])-1] != "true" {
		t.Fatalf("clusterList rows:\n%s", out)
	}
	out = c.mq(t, "clusterList", "-m", "-c", "DefaultCluster")
	assertHeader(t, out, hdrClusterMore)
	if rows := rowsAfterHeader(out); len(rows) != 1 || rows[0][1] != "broker-a" {
		t.Fatalf("clusterList -m:\n%s", out)
	}
	if r := mqFail(t, nil, "updateTopic", "-t", "X", "-c", "NoSuchCluster", "-n", c.ns); !strings.Contains(r.stderr, "NoSuchCluster") {
		t.Fatalf("unknown cluster: %q", r.stderr)
	}

	// updateTopic, then topicRoute shows its queues; topicList lists it.
	const topic, topic2, group = "MqTopic", "MqTopic2", "MqGroup"
	out = c.mq(t, "updateTopic", "-b", c.broker, "-t", topic, "-r", "3", "-w", "3")
	if !strings.Contains(out, "create topic to "+c.broker+" success.") ||
		!strings.Contains(out, "TopicConfig [topicName="+topic+", readQueueNums=3, writeQueueNums=3, perm=RW-") {
		t.Fatalf("updateTopic:\n%s", out)
	}
	eventually(t, 10*time.Second, "route of "+topic, func() bool {
		return mqRun(t, nil, "topicRoute", "-t", topic, "-n", c.ns).code == 0
	})
	if r, w, p := c.routeQueues(t, topic); r != 3 || w != 3 || p != 6 {
		t.Fatalf("topicRoute -l: read %d write %d perm %d", r, w, p)
	}
	out = c.mq(t, "topicRoute", "-t", topic)
	for _, want := range []string{`"readQueueNums":3`, `"writeQueueNums":3`, `"perm":6`, `"brokerName":"broker-a"`, `"0":"` + c.broker + `"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("topicRoute JSON lacks %s:\n%s", want, out)
		}
	}
	out = c.mq(t, "updateTopic", "-c", "DefaultCluster", "-t", topic2, "-r", "2", "-w", "2", "-o", "true")
	if !strings.Contains(out, "create topic to "+c.broker+" success.") || !strings.Contains(out, "set cluster orderConf. isOrder=true, orderConf=[broker-a:2]") {
		t.Fatalf("updateTopic -c -o:\n%s", out)
	}
	eventually(t, 10*time.Second, "topicList shows both topics", func() bool {
		out := c.mq(t, "topicList")
		return regexp.MustCompile(`(?m)^`+topic+`$`).MatchString(out) && regexp.MustCompile(`(?m)^`+topic2+`$`).MatchString(out)
	})
	out = c.mq(t, "topicList", "-c")
	assertHeader(t, out, hdrTopicListC)
	if !regexp.MustCompile(`(?m)^DefaultCluster\s+` + topic + `\s*$`).MatchString(out) {
		t.Fatalf("topicList -c lacks %s:\n%s", topic, out)
	}

	// Errors: unknown topic and group give one line and exit 1.
	if r := mqFail(t, nil, "topicRoute", "-t", "NoSuchTopic", "-n", c.ns); r.code != 1 || !strings.Contains(r.stderr, "NoSuchTopic") {
		t.Fatalf("unknown topic: %d %q", r.code, r.stderr)
	}
	mqFail(t, nil, "topicStatus", "-t", "NoSuchTopic", "-n", c.ns)
	if r := mqFail(t, nil, "consumerProgress", "-g", "NoSuchGroup", "-n", c.ns); !strings.Contains(r.stderr, "NoSuchGroup") {
		t.Fatalf("unknown group: %q", r.stderr)
	}
	mqFail(t, nil, "consumerConnection", "-g", "NoSuchGroup", "-n", c.ns)
	mqFail(t, nil, "queryMsgByKey", "-t", topic, "-k", "noSuchKey", "-n", c.ns)

	// A producer (for producerConnection) sends 6 messages, 2 per queue.
	ts0 := time.Now().Add(-time.Second).UnixMilli()
	p, err := producer.NewDefaultProducer(producer.WithNameServer([]string{c.ns}), producer.WithGroupName("MqProducerGroup"),
		producer.WithInstanceName(uniqueInstanceMq("p")), producer.WithSendMsgTimeout(5*time.Second),
		producer.WithQueueSelector(producer.NewRoundRobinQueueSelector()))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Shutdown() }()
	var sentIDs []string
	for i := 0; i < 6; i++ {
		msg := primitive.NewMessage(topic, []byte(fmt.Sprintf("body-%d", i)))
		msg.WithKeys([]string{"mqkey"})
		msg.WithTag("TagA")
		var res *primitive.SendResult
		eventually(t, 10*time.Second, "send", func() bool {
			res, err = p.SendSync(context.Background(), msg)
			return err == nil && res.Status == primitive.SendOK
		})
		sentIDs = append(sentIDs, res.MsgID)
	}

	// topicStatus: the max offsets add up to what was sent (once dispatched).
	topicStatusSum := func() (int64, string) {
		out := c.mq(t, "topicStatus", "-t", topic)
		assertHeader(t, out, hdrTopicStatus)
		rows := rowsAfterHeader(out)
		if len(rows) != 3 || !strings.Contains(out, "Topic Put TPS: ") {
			t.Fatalf("topicStatus rows:\n%s", out)
		}
		var sum int64
		for _, row := range rows {
			n, _ := strconv.ParseInt(row[3], 10, 64)
			sum += n
		}
		return sum, out
	}
	eventually(t, 10*time.Second, "topicStatus max offsets sum to 6", func() bool { n, _ := topicStatusSum(); return n == 6 })
	if _, out := topicStatusSum(); !regexp.MustCompile(`(?m)^broker-a\s+0\s+0\s+2\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}$`).MatchString(out) {
		t.Fatalf("topicStatus queue 0 (min 0, max 2, last updated):\n%s", out)
	}

	// Message queries.
	out = c.mq(t, "queryMsgById", "-t", topic, "-i", sentIDs[0])
	if lineValue(t, out, "Topic:") != topic || lineValue(t, out, "Keys:") != "[mqkey]" || lineValue(t, out, "Tags:") != "[TagA]" {
		t.Fatalf("queryMsgById:\n%s", out)
	}
	offsetID := lineValue(t, out, "OffsetID:")
	out = c.mq(t, "queryMsgById", "-t", topic, "-i", offsetID, "-f", "UTF-8")
	if lineValue(t, out, "Message Body:") != "body-0" {
		t.Fatalf("queryMsgById by offset id:\n%s", out)
	}
	out = c.mq(t, "queryMsgByKey", "-t", topic, "-k", "mqkey")
	assertHeader(t, out, hdrQueryByKey)
	if rows := rowsAfterHeader(out); len(rows) != 6 {
		t.Fatalf("queryMsgByKey: %d rows, want 6:\n%s", len(rows), out)
	}
	out = c.mq(t, "queryMsgByUniqueKey", "-t", topic, "-i", sentIDs[1])
	if lineValue(t, out, "Topic:") != topic || !strings.Contains(out, sentIDs[1]) {
		t.Fatalf("queryMsgByUniqueKey:\n%s", out)
	}
	qid := lineValue(t, out, "Queue ID:")
	qoff := lineValue(t, out, "Queue Offset:")
	out = c.mq(t, "queryMsgByOffset", "-t", topic, "-b", "broker-a", "-i", qid, "-o", qoff, "-f", "UTF-8")
	if lineValue(t, out, "Message Body:") != "body-1" {
		t.Fatalf("queryMsgByOffset:\n%s", out)
	}
	mqFail(t, nil, "queryMsgByOffset", "-t", topic, "-b", "broker-a", "-i", "0", "-o", "99", "-n", c.ns)
	out = c.mq(t, "printMsg", "-t", topic)
	if n := strings.Count(out, "MSGID: "); n != 6 || !strings.Contains(out, "BODY: body-5") {
		t.Fatalf("printMsg: %d messages:\n%s", n, out)
	}
	out = c.mq(t, "printMsg", "-t", topic, "-s", "TagB", "-d", "false")
	if strings.Contains(out, "MSGID: ") {
		t.Fatalf("printMsg -s TagB printed messages:\n%s", out)
	}
	out = c.mq(t, "consumeMessage", "-t", topic, "-c", "100")
	if n := strings.Count(out, "MSGID: "); n != 6 {
		t.Fatalf("consumeMessage: %d messages:\n%s", n, out)
	}
	out = c.mq(t, "consumeMessage", "-t", topic, "-b", "broker-a", "-i", "1", "-o", "1")
	if n := strings.Count(out, "MSGID: "); n != 1 {
		t.Fatalf("consumeMessage -i 1 -o 1: %d messages:\n%s", n, out)
	}

	// producerConnection: the Go producer, language GO.
	eventually(t, 10*time.Second, "producer connection", func() bool {
		r := mqRun(t, nil, "producerConnection", "-g", "MqProducerGroup", "-t", topic, "-n", c.ns)
		return r.code == 0 && regexp.MustCompile(`(?m)^0001  \S+\s+127\.0\.0\.1:\d+\s+GO\s+V\d`).MatchString(r.stdout)
	})
	mqFail(t, nil, "producerConnection", "-g", "NoSuchProducerGroup", "-t", topic, "-n", c.ns)

	// updateSubGroup, then a push consumer of that group consumes everything.
	out = c.mq(t, "updateSubGroup", "-b", c.broker, "-g", group, "-r", "3", "-m", "true")
	if !strings.Contains(out, "create subscription group to "+c.broker+" success.") ||
		!strings.Contains(out, "SubscriptionGroupConfig{groupName="+group+", consumeEnable=true, consumeFromMinEnable=true") ||
		!strings.Contains(out, "retryMaxTimes=3") {
		t.Fatalf("updateSubGroup:\n%s", out)
	}
	var consumed atomic.Int64
	pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{c.ns}), consumer.WithGroupName(group),
		consumer.WithInstance(uniqueInstanceMq("c")), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			consumed.Add(int64(len(msgs)))
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	pcDown := false
	defer func() {
		if !pcDown {
			_ = pc.Shutdown()
		}
	}()
	eventually(t, 20*time.Second, "consumer consumed 6", func() bool { return consumed.Load() >= 6 })
	// consumerProgress: diff = sent - consumed = 0 once offsets are committed.
	eventually(t, 20*time.Second, "consumerProgress diff 0", func() bool {
		r := mqRun(t, nil, "consumerProgress", "-g", group, "-n", c.ns)
		return r.code == 0 && strings.Contains(r.stdout, "Consume Diff Total: 0\n")
	})
	if brokerSum, diff, out := c.progress(t, group); brokerSum != 6 || diff != 0 {
		t.Fatalf("consumerProgress: broker offsets %d diff %d:\n%s", brokerSum, diff, out)
	}
	// consumerProgress -s true: the client IP of each queue comes from the
	// client's running info (GET_CONSUMER_RUNNING_INFO relayed by the
	// broker). rocketmq-client-go cannot always encode its running info
	// (NaN in its status table); then the column is N/A and stderr says why.
	r0 := mqRun(t, nil, "consumerProgress", "-g", group, "-t", topic, "-s", "true", "-n", c.ns)
	if r0.code != 0 {
		t.Fatalf("consumerProgress -s true: exit %d\n%s%s", r0.code, r0.stdout, r0.stderr)
	}
	out = r0.stdout
	assertHeader(t, out, hdrProgressIP)
	rows = rowsAfterHeader(out)
	if len(rows) != 3 {
		t.Fatalf("consumerProgress -s true rows:\n%s", out)
	}
	for _, row := range rows {
		switch {
		case row[5] != "N/A" && !strings.Contains(row[5], "@"):
		case row[5] == "N/A" && strings.Contains(r0.stderr, "sent no running info"):
			assertOneLine(t, r0.stderr)
		default:
			t.Fatalf("consumerProgress -s true: no client IP for queue %s and no reason:\n%s%s", row[2], out, r0.stderr)
		}
	}
	if r0.stderr != "" {
		t.Logf("consumerProgress -s true: %s", strings.TrimSpace(r0.stderr))
	}
	out = c.mq(t, "consumerProgress")
	assertHeader(t, out, hdrProgressAll)
	if !regexp.MustCompile(`(?m)^` + group + `\s+1\s+V\d\S*\s+PUSH\s+CLUSTERING\s+\d+\s+0$`).MatchString(out) {
		t.Fatalf("consumerProgress (all groups) lacks %s online with diff 0:\n%s", group, out)
	}

	// consumerConnection: one Go client, its subscription, push/clustering.
	out = c.mq(t, "consumerConnection", "-g", group)
	assertHeader(t, out, hdrConsumerConn)
	if !regexp.MustCompile(`(?m)^\S+\s+127\.0\.0\.1:\d+\s+GO\s+V\d`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^`+topic+`\s+\*$`).MatchString(out) ||
		!strings.Contains(out, "ConsumeType: CONSUME_PASSIVELY\n") || !strings.Contains(out, "MessageModel: CLUSTERING\n") {
		t.Fatalf("consumerConnection:\n%s", out)
	}

	// brokerConsumeStats (317), with the consumer online: the table when the
	// broker implements the code, else a clear one-line
	// REQUEST_CODE_NOT_SUPPORTED error.
	r := mqRun(t, nil, "brokerConsumeStats", "-b", c.broker, "-n", c.ns)
	if r.code == 0 {
		assertHeader(t, r.stdout, hdrBrokerConsumeStats)
		n := 0
		for _, row := range rowsAfterHeader(r.stdout) {
			if row[0] == topic && row[1] == group {
				n++
				if row[6] != "0" {
					t.Fatalf("brokerConsumeStats diff %s, want 0:\n%s", row[6], r.stdout)
				}
			}
		}
		if n != 3 || !strings.Contains(r.stdout, "\nDiff Total: 0\n") {
			t.Fatalf("brokerConsumeStats: %d rows of %s/%s, want 3, and Diff Total 0:\n%s", n, topic, group, r.stdout)
		}
	} else {
		assertOneLine(t, r.stderr)
		if !strings.Contains(r.stderr, "does not support request code 317 GET_BROKER_CONSUME_STATS") {
			t.Fatalf("brokerConsumeStats error: %q", r.stderr)
		}
		t.Logf("brokerConsumeStats: %s", strings.TrimSpace(r.stderr))
	}

	// queryMsgById / queryMsgByUniqueKey -g -d: the broker relays
	// CONSUME_MESSAGE_DIRECTLY to the client, which consumes the message.
	clientID := rowsAfterHeader(out)[0][0]
	before := consumed.Load()
	out = c.mq(t, "queryMsgById", "-t", topic, "-i", sentIDs[3], "-g", group, "-d", clientID)
	if !strings.HasPrefix(out, "ConsumeMessageDirectlyResult [order=false, autoCommit=true, consumeResult=CR_SUCCESS") {
		t.Fatalf("queryMsgById -g -d:\n%s", out)
	}
	out = c.mq(t, "queryMsgByUniqueKey", "-t", topic, "-i", sentIDs[4], "-g", group, "-d", clientID)
	if !strings.Contains(out, "consumeResult=CR_SUCCESS") {
		t.Fatalf("queryMsgByUniqueKey -g -d:\n%s", out)
	}
	if n := consumed.Load() - before; n != 2 {
		t.Fatalf("direct consumption delivered %d messages, want 2", n)
	}
	if r := mqFail(t, nil, "queryMsgById", "-t", topic, "-i", sentIDs[3], "-g", group, "-d", "no-such-client", "-n", c.ns); r.code != 1 {
		t.Fatalf("consume directly by an unknown client: exit %d", r.code)
	}

	// resetOffsetByTime while the consumer is online (222): to now, which
	// leaves every queue at its end.
	out = c.mq(t, "resetOffsetByTime", "-g", group, "-t", topic, "-s", "now")
	if !strings.Contains(out, "start reset consumer offset by specified, group["+group+"], topic["+topic+"], force[true]") {
		t.Fatalf("resetOffsetByTime (online):\n%s", out)
	}
	if i := strings.Index(out, hdrResetOffset+"\n"); i < 0 {
		t.Fatalf("resetOffsetByTime header missing:\n%s", out)
	} else {
		var sum int64
		rows := rowsAfterHeader(out[i:])
		for _, row := range rows {
			n, _ := strconv.ParseInt(row[2], 10, 64)
			sum += n
		}
		if len(rows) != 3 || sum != 6 {
			t.Fatalf("resetOffsetByTime to now: %d rows, offsets sum %d, want 3 rows summing to 6:\n%s", len(rows), sum, out)
		}
	}

	// Stop the consumer, send 4 more with mqadmin: diff = 10 sent - 6 consumed.
	_ = pc.Shutdown()
	pcDown = true
	for i := 0; i < 4; i++ {
		out = c.mq(t, "sendMessage", "-t", topic, "-p", fmt.Sprintf("more-%d", i), "-k", "morekey", "-c", "TagB")
		assertHeader(t, out, hdrSend)
		if rows := rowsAfterHeader(out); len(rows) != 1 || rows[0][0] != "broker-a" || rows[0][2] != "SEND_OK" || len(rows[0][3]) != 32 {
			t.Fatalf("sendMessage:\n%s", out)
		}
	}
	out = c.mq(t, "sendMessage", "-t", topic, "-p", "pinned", "-b", "broker-a", "-i", "2")
	if rows := rowsAfterHeader(out); len(rows) != 1 || rows[0][1] != "2" {
		t.Fatalf("sendMessage -b -i 2:\n%s", out)
	}
	pinnedID := rowsAfterHeader(out)[0][3]
	if out := c.mq(t, "queryMsgById", "-t", topic, "-i", pinnedID, "-f", "UTF-8"); lineValue(t, out, "Message Body:") != "pinned" {
		t.Fatalf("queryMsgById of sendMessage's id:\n%s", out)
	}
	if brokerSum, diff, out := c.progress(t, group); brokerSum != 11 || diff != 5 {
		t.Fatalf("consumerProgress after 11 sent, 6 consumed: broker offsets %d diff %d:\n%s", brokerSum, diff, out)
	}

	// statsAll: the group's accumulation is the diff.
	r = mqRun(t, nil, "statsAll", "-t", topic, "-n", c.ns)
	if r.code != 0 {
		t.Fatalf("statsAll: exit %d %s", r.code, r.stderr)
	}
	assertHeader(t, r.stdout, hdrStatsAll)
	if !regexp.MustCompile(`(?m)^` + topic + `\s+` + group + `\s+5\s`).MatchString(r.stdout) {
		t.Fatalf("statsAll lacks %s %s with accumulation 5:\n%s", topic, group, r.stdout)
	}
	if r.stderr == "" {
		// VIEW_BROKER_STATS_DATA (315) answered: 11 messages put today, at
		// least the 6 the group pulled.
		m := regexp.MustCompile(`(?m)^` + topic + `\s+` + group + `\s+5\s+\S+\s+\S+\s+(\d+)\s+(\d+)$`).FindStringSubmatch(r.stdout)
		if m == nil || m[1] != "11" {
			t.Fatalf("statsAll: want InMsg24Hour 11:\n%s", r.stdout)
		}
		if out24, _ := strconv.Atoi(m[2]); out24 < 6 {
			t.Fatalf("statsAll: OutMsg24Hour %d, want >= 6:\n%s", out24, r.stdout)
		}
	} else {
		// VIEW_BROKER_STATS_DATA (315) not implemented by the broker: one clear warning.
		assertOneLine(t, r.stderr)
		if !strings.Contains(r.stderr, "315 VIEW_BROKER_STATS_DATA") {
			t.Fatalf("statsAll warning: %q", r.stderr)
		}
		t.Logf("statsAll: %s", strings.TrimSpace(r.stderr))
	}

	// resetOffsetByTime with the consumer offline, back to before the first
	// send: every message is unconsumed again.
	out = c.mq(t, "resetOffsetByTime", "-g", group, "-t", topic, "-s", strconv.FormatInt(ts0, 10))
	switch {
	case strings.Contains(out, hdrResetOffsetOld):
		// The broker answered CONSUMER_NOT_ONLINE: the tool reset the offsets itself.
		if rows := rowsAfterHeader(out[strings.Index(out, hdrResetOffsetOld):]); len(rows) != 3 || rows[0][5] != "0" {
			t.Fatalf("resetOffsetByTime (offline) rows:\n%s", out)
		}
	case strings.Contains(out, hdrResetOffset):
		t.Logf("resetOffsetByTime after the consumer stopped: the broker still had it online")
	default:
		t.Fatalf("resetOffsetByTime (offline):\n%s", out)
	}
	if brokerSum, diff, out := c.progress(t, group); brokerSum != 11 || diff != 11 {
		t.Fatalf("consumerProgress after reset: broker offsets %d diff %d:\n%s", brokerSum, diff, out)
	}
	// Pinned to one queue, to an explicit offset.
	out = c.mq(t, "resetOffsetByTime", "-g", group, "-t", topic, "-s", "now", "-b", c.broker, "-q", "0")
	if !strings.Contains(out, "queueId[0], broker["+c.broker+"]") || !strings.Contains(out, "reset consumer offset to ") {
		t.Fatalf("resetOffsetByTime -b -q:\n%s", out)
	}

	// Broker status and configuration.
	out = c.mq(t, "brokerStatus", "-b", c.broker)
	if lineValue(t, out, fmt.Sprintf("%-32s: ", "brokerVersionDesc")) != "V5_3_3" {
		t.Fatalf("brokerStatus:\n%s", out)
	}
	out = c.mq(t, "brokerStatus", "-c", "DefaultCluster")
	if !strings.Contains(out, fmt.Sprintf("%-24s %-32s: %s", c.broker, "brokerVersionDesc", "V5_3_3")) {
		t.Fatalf("brokerStatus -c:\n%s", out)
	}
	out = c.mq(t, "getBrokerConfig", "-b", c.broker)
	assertHeader(t, out, "============"+c.broker+"============")
	if lineValue(t, out, fmt.Sprintf("%-50s=  ", "brokerName")) != "broker-a" {
		t.Fatalf("getBrokerConfig:\n%s", out)
	}
	out = c.mq(t, "updateBrokerConfig", "-b", c.broker, "-k", "fileReservedTime", "-v", "49")
	if out != "update broker config success, "+c.broker+"\n" {
		t.Fatalf("updateBrokerConfig:\n%s", out)
	}
	out = c.mq(t, "getBrokerConfig", "-c", "DefaultCluster")
	assertHeader(t, out, "============Master: "+c.broker+"============")
	if lineValue(t, out, fmt.Sprintf("%-50s=  ", "fileReservedTime")) != "49" {
		t.Fatalf("getBrokerConfig after update:\n%s", out)
	}
	if r := mqFail(t, nil, "updateBrokerConfig", "-b", c.broker, "-k", "noSuchKey", "-v", "1", "-n", c.ns); !strings.Contains(r.stderr, "noSuchKey") {
		t.Fatalf("updateBrokerConfig bad key: %q", r.stderr)
	}
	out = c.mq(t, "getNamesrvConfig")
	assertHeader(t, out, "============"+c.ns+"============")
	if !regexp.MustCompile(`(?m)^listenPort\s+=  \d+$`).MatchString(out) {
		t.Fatalf("getNamesrvConfig:\n%s", out)
	}

	// Permissions: per topic, and per broker on the name servers.
	out = c.mq(t, "updateTopicPerm", "-b", c.broker, "-t", topic, "-p", "4")
	if !strings.Contains(out, "update topic perm from 6 to 4 in "+c.broker+" success.") {
		t.Fatalf("updateTopicPerm:\n%s", out)
	}
	eventually(t, 10*time.Second, "perm 4 in route", func() bool { _, _, p := c.routeQueues(t, topic); return p == 4 })
	c.mq(t, "updateTopicPerm", "-c", "DefaultCluster", "-t", topic, "-p", "6")
	eventually(t, 10*time.Second, "perm 6 in route", func() bool { _, _, p := c.routeQueues(t, topic); return p == 6 })
	out = c.mq(t, "wipeWritePerm", "-b", "broker-a")
	if !regexp.MustCompile(`^wipe write perm of broker\[broker-a\] in name server\[` + regexp.QuoteMeta(c.ns) + `\] OK, [1-9]\d*\n$`).MatchString(out) {
		t.Fatalf("wipeWritePerm:\n%s", out)
	}
	if _, _, p := c.routeQueues(t, topic); p != 4 {
		t.Fatalf("after wipeWritePerm perm %d, want 4", p)
	}
	out = c.mq(t, "addWritePerm", "-b", "broker-a")
	if !regexp.MustCompile(`^add write perm of broker\[broker-a\] in name server\[` + regexp.QuoteMeta(c.ns) + `\] OK, [1-9]\d*\n$`).MatchString(out) {
		t.Fatalf("addWritePerm:\n%s", out)
	}
	if _, _, p := c.routeQueues(t, topic); p != 6 {
		t.Fatalf("after addWritePerm perm %d, want 6", p)
	}

	// Deletions.
	c.mq(t, "updateSubGroup", "-c", "DefaultCluster", "-g", "MqGroup2")
	out = c.mq(t, "deleteSubGroup", "-b", c.broker, "-g", "MqGroup2", "-r", "true")
	if out != "delete subscription group [MqGroup2] from broker ["+c.broker+"] success.\n" {
		t.Fatalf("deleteSubGroup:\n%s", out)
	}
	out = c.mq(t, "deleteTopic", "-c", "DefaultCluster", "-t", topic2)
	if out != "delete topic ["+topic2+"] from cluster [DefaultCluster] success.\ndelete topic ["+topic2+"] from NameServer success.\n" {
		t.Fatalf("deleteTopic:\n%s", out)
	}
	if r := mqFail(t, nil, "topicRoute", "-t", topic2, "-n", c.ns); r.code != 1 {
		t.Fatalf("topicRoute of a deleted topic: exit %d", r.code)
	}
	// queryMsgById -s true resends the message (same UNIQ_KEY, new offset).
	out = c.mq(t, "queryMsgById", "-t", topic, "-i", sentIDs[2], "-s", "true")
	if !strings.HasPrefix(out, "prepare resend msg. originalMsgId="+sentIDs[2]+"SendResult [sendStatus=SEND_OK, msgId="+sentIDs[2]+", offsetMsgId=") {
		t.Fatalf("queryMsgById -s true:\n%s", out)
	}
	eventually(t, 10*time.Second, "resent message indexed under its key", func() bool {
		r := mqRun(t, nil, "queryMsgByKey", "-t", topic, "-k", "mqkey", "-n", c.ns)
		return r.code == 0 && len(rowsAfterHeader(r.stdout)) == 7 && strings.Count(r.stdout, sentIDs[2]) == 2
	})
	t.Logf("mqadmin commands against the broker took %v", time.Since(start).Round(time.Millisecond))
}

var mqInstanceSeq atomic.Int64

func uniqueInstanceMq(prefix string) string {
	return fmt.Sprintf("mq%s-%d-%d", prefix, time.Now().UnixNano(), mqInstanceSeq.Add(1))
}

package broker

import (
	"fmt"
	"strconv"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

// GET_BROKER_RUNTIME_INFO (28): the key/value table mqadmin brokerStatus
// and clusterList and the dashboard read.

// runningStatser is an optional Extension capability: add runtime-info keys.
type runningStatser interface {
	RunningStats(table map[string]string)
}

func (b *Broker) handleRuntimeInfo(_ remoting.Conn, _ *remoting.RemotingCommand) *remoting.RemotingCommand {
	resp := respond(protocol.Success, "")
	resp.Body = (&protocol.KVTable{Table: b.runtimeInfo()}).Encode()
	return resp
}

func formatTps(r10, r60, r600 float64) string {
	return fmt.Sprintf("%.2f %.2f %.2f", r10, r60, r600)
}

// runtimeInfo is the KV table mqadmin brokerStatus / clusterList and the
// dashboard read (Java AdminBrokerProcessor.prepareRuntimeInfo). Keys the
// store reports override the zero defaults below.
func (b *Broker) runtimeInfo() map[string]string {
	now := time.Now()
	s := b.stats
	putTps := formatTps(s.putRate.rate(10), s.putRate.rate(60), s.putRate.rate(600))
	getTps := formatTps(s.getRate.rate(10), s.getRate.rate(60), s.getRate.rate(600))
	up := now.Sub(b.startTime)
	producers, consumers := b.clients.counts()
	t := map[string]string{
		"brokerVersionDesc":                        brokerVersionDesc,
		"brokerVersion":                            strconv.Itoa(int(protocol.CurrentVersion)),
		"brokerActive":                             strconv.FormatBool(b.IsMaster()),
		"msgPutTotalYesterdayMorning":              strconv.FormatInt(s.putYesterdayMorning.Load(), 10),
		"msgPutTotalTodayMorning":                  strconv.FormatInt(s.putTodayMorning.Load(), 10),
		"msgPutTotalTodayNow":                      strconv.FormatInt(s.putNums.Load(), 10),
		"msgGetTotalYesterdayMorning":              strconv.FormatInt(s.getYesterdayMorning.Load(), 10),
		"msgGetTotalTodayMorning":                  strconv.FormatInt(s.getTodayMorning.Load(), 10),
		"msgGetTotalTodayNow":                      strconv.FormatInt(s.getNums.Load(), 10),
		"putTps":                                   putTps,
		"getTransferedTps":                         getTps,
		"getTransferredTps":                        getTps,
		"getFoundTps":                              getTps,
		"getMissTps":                               formatTps(0, 0, 0),
		"getTotalTps":                              getTps,
		"sendThreadPoolQueueSize":                  "0",
		"sendThreadPoolQueueCapacity":              "10000",
		"pullThreadPoolQueueSize":                  "0",
		"pullThreadPoolQueueCapacity":              "100000",
		"litePullThreadPoolQueueSize":              "0",
		"litePullThreadPoolQueueCapacity":          "100000",
		"queryThreadPoolQueueSize":                 "0",
		"queryThreadPoolQueueCapacity":             "20000",
		"EndTransactionQueueSize":                  "0",
		"EndTransactionThreadPoolQueueCapacity":    "100000",
		"sendThreadPoolQueueHeadWaitTimeMills":     "0",
		"pullThreadPoolQueueHeadWaitTimeMills":     "0",
		"queryThreadPoolQueueHeadWaitTimeMills":    "0",
		"litePullThreadPoolQueueHeadWaitTimeMills": "0",
		"pageCacheLockTimeMills":                   "0",
		"dispatchBehindBytes":                      "0",
		"putMessageTimesTotal":                     strconv.FormatInt(s.putNums.Load(), 10),
		"putMessageSizeTotal":                      strconv.FormatInt(s.putBytes.Load(), 10),
		"putMessageAverageSize":                    avgSize(s.putBytes.Load(), s.putNums.Load()),
		"putMessageEntireTimeMax":                  "0",
		"getMessageEntireTimeMax":                  "0",
		"putMessageDistributeTime":                 "[<=0ms]:0 [0~10ms]:0 [10~50ms]:0 [50~100ms]:0 [100~200ms]:0 [200~500ms]:0 [500ms~1s]:0 [1~2s]:0 [2~3s]:0 [3~4s]:0 [4~5s]:0 [5~10s]:0 [10s~]:0 ",
		"remainTransientStoreBufferNumbs":          "0",
		"remainHowManyDataToFlush":                 "0 B",
		"startAcceptSendRequestTimeStamp":          "0",
		"bootTimestamp":                            strconv.FormatInt(b.startTime.UnixMilli(), 10),
		"runtime":                                  fmt.Sprintf("[ %d days, %d hours, %d minutes, %d seconds ]", int(up.Hours())/24, int(up.Hours())%24, int(up.Minutes())%60, int(up.Seconds())%60),
		"earliestMessageTimeStamp":                 "0",
		"commitLogDiskRatio":                       "0.0",
		"consumeQueueDiskRatio":                    "0.0",
		"commitLogDirCapacity":                     "",
		"commitLogMaxOffset":                       strconv.FormatInt(b.store.GetMaxPhyOffset(), 10),
		"commitLogMinOffset":                       strconv.FormatInt(b.store.GetMinPhyOffset(), 10),
		"timerReadBehind":                          "0",
		"timerOffsetBehind":                        "0",
		"timerCongestNum":                          "0",
		"timerEnqueueTps":                          "0.0",
		"timerDequeueTps":                          "0.0",
		"longPollingHeldRequests":                  strconv.Itoa(b.holds.count()),
		"producerChannels":                         strconv.Itoa(producers),
		"consumerChannels":                         strconv.Itoa(consumers),
	}
	for k, v := range b.store.RuntimeInfo() {
		t[k] = v
	}
	// Extensions add their own keys (scheduleMessageOffset_<level>, ...).
	for _, e := range b.extensions {
		if rs, ok := e.(runningStatser); ok {
			rs.RunningStats(t)
		}
	}
	b.addRaftRuntimeInfo(t) // dledger* keys (role.go), DLedger mode only
	return t
}

func avgSize(bytes, n int64) string {
	if n == 0 {
		return "0.0"
	}
	return strconv.FormatFloat(float64(bytes)/float64(n), 'f', 1, 64)
}

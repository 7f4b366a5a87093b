package main

// clusterList (ClusterListSubCommand): every broker of every cluster with
// its runtime figures, or with -m yesterday's and today's totals.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rmqd/rmqd/protocol"
)

func init() {
	register(&command{
		name: "clusterList",
		desc: "List cluster infos.",
		setup: func(f *flagSet) func(*env) error {
			more := f.flag("m", "moreStats", "Print more stats")
			interval := f.arg("i", "interval", "specify intervals numbers, it is in seconds")
			cluster := f.arg("c", "clusterName", "which cluster")
			return func(e *env) error {
				adm, err := e.admin()
				if err != nil {
					return err
				}
				var every time.Duration
				if interval.has() {
					n, err := parseIntOpt(interval)
					if err != nil {
						return err
					}
					every = time.Duration(n) * time.Second
				}
				for i := 0; ; i++ {
					if i > 0 {
						time.Sleep(every)
					}
					ci, err := adm.clusterInfo()
					if err != nil {
						return err
					}
					clusters := targetClusters(ci, cluster.str())
					if more.has() {
						printClusterMoreStats(e, adm, ci, clusters)
					} else {
						printClusterBaseInfo(e, adm, ci, clusters)
					}
					if every <= 0 {
						return nil
					}
				}
			}
		},
	})
}

func targetClusters(ci *protocol.ClusterInfo, only string) []string {
	if only != "" {
		return []string{only}
	}
	names := make([]string, 0, len(ci.ClusterAddrTable))
	for n := range ci.ClusterAddrTable {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// eachBroker calls fn for every address of every broker group of the
// clusters, broker names sorted, ids ascending.
func eachBroker(ci *protocol.ClusterInfo, clusters []string, fn func(cluster, brokerName string, id int64, addr string)) {
	for _, c := range clusters {
		names := append([]string(nil), ci.ClusterAddrTable[c]...)
		sort.Strings(names)
		for _, bn := range names {
			bd, ok := ci.BrokerAddrTable[bn]
			if !ok {
				continue
			}
			for _, id := range sortedIDs(bd.BrokerAddrs) {
				fn(c, bn, id, bd.BrokerAddrs[id])
			}
		}
	}
}

func printClusterMoreStats(e *env, adm *admin, ci *protocol.ClusterInfo, clusters []string) {
	e.printf("%-16s  %-32s %14s %14s %14s %14s\n",
		"#Cluster Name", "#Broker Name", "#InTotalYest", "#OutTotalYest", "#InTotalToday", "#OutTotalToday")
	eachBroker(ci, clusters, func(cluster, bn string, _ int64, addr string) {
		var inYest, outYest, inToday, outToday int64
		if kv, err := adm.runtimeInfo(addr); err != nil {
			e.warnf("%v", err)
		} else {
			n := func(k string) int64 { v, _ := strconv.ParseInt(kv[k], 10, 64); return v }
			inYest = n("msgPutTotalTodayMorning") - n("msgPutTotalYesterdayMorning")
			outYest = n("msgGetTotalTodayMorning") - n("msgGetTotalYesterdayMorning")
			inToday = n("msgPutTotalTodayNow") - n("msgPutTotalTodayMorning")
			outToday = n("msgGetTotalTodayNow") - n("msgGetTotalTodayMorning")
		}
		e.printf("%-16s  %-32s %14d %14d %14d %14d\n", cluster, bn, inYest, outYest, inToday, outToday)
	})
}

const clusterListFormat = "%-22s  %-22s  %-4s  %-22s %-16s  %16s  %30s  %-22s  %11s  %-12s  %-8s  %10s\n"

func printClusterBaseInfo(e *env, adm *admin, ci *protocol.ClusterInfo, clusters []string) {
	e.printf("%-22s  %-22s  %-4s  %-22s %-16s  %16s  %30s  %-22s  %-11s  %-12s  %-8s  %-10s\n",
		"#Cluster Name", "#Broker Name", "#BID", "#Addr", "#Version", "#InTPS(LOAD)", "#OutTPS(LOAD)",
		"#Timer(Progress)", "#PCWait(ms)", "#Hour", "#SPACE", "#ACTIVATED")
	eachBroker(ci, clusters, func(cluster, bn string, id int64, addr string) {
		kv, err := adm.runtimeInfo(addr)
		if err != nil {
			e.warnf("%v", err)
			kv = map[string]string{}
		}
		get := func(k, def string) string {
			if v, ok := kv[k]; ok {
				return v
			}
			return def
		}
		firstFloat := func(k string) float64 {
			f := strings.Fields(kv[k])
			if len(f) == 0 {
				return 0
			}
			v, _ := strconv.ParseFloat(f[0], 64)
			return v
		}
		in, out := firstFloat("putTps"), firstFloat("getTransferredTps")
		readBehind, _ := strconv.ParseInt(kv["timerReadBehind"], 10, 64)
		offsetBehind, _ := strconv.ParseInt(kv["timerOffsetBehind"], 10, 64)
		congest, _ := strconv.ParseInt(kv["timerCongestNum"], 10, 64)
		enq, _ := strconv.ParseFloat(kv["timerEnqueueTps"], 32)
		deq, _ := strconv.ParseFloat(kv["timerDequeueTps"], 32)
		var hour, space float64
		if s := kv["earliestMessageTimeStamp"]; s != "" {
			if ts, err := strconv.ParseInt(s, 10, 64); err == nil {
				hour = float64(time.Now().UnixMilli()-ts) / 1000.0 / 60.0 / 60.0
			}
		}
		if s := kv["commitLogDiskRatio"]; s != "" {
			space, _ = strconv.ParseFloat(s, 64)
		}
		e.printf(clusterListFormat,
			cluster, bn, strconv.FormatInt(id, 10), addr, kv["brokerVersionDesc"],
			fmt.Sprintf("%9.2f(%s,%sms)", in, kv["sendThreadPoolQueueSize"], kv["sendThreadPoolQueueHeadWaitTimeMills"]),
			fmt.Sprintf("%9.2f(%s,%sms|%s,%sms)", out, kv["pullThreadPoolQueueSize"], kv["pullThreadPoolQueueHeadWaitTimeMills"],
				get("ackThreadPoolQueueSize", "N"), get("ackThreadPoolQueueHeadWaitTimeMills", "N")),
			fmt.Sprintf("%d-%d(%.1fw, %.1f, %.1f)", readBehind, offsetBehind, float64(congest)/10000.0, enq, deq),
			kv["pageCacheLockTimeMills"],
			fmt.Sprintf("%2.2f", hour),
			fmt.Sprintf("%.4f", space),
			strconv.FormatBool(parseBool(kv["brokerActive"])),
		)
	})
}

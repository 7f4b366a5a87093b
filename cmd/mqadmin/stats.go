package main

// statsAll (StatsAllSubCommand) and producerConnection.

import (
	"fmt"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

func init() {
	register(&command{name: "statsAll", desc: "Topic and Consumer tps stats.", setup: setupStatsAll})
	register(&command{name: "producerConnection", desc: "Query producer's socket connection and client version.", setup: setupProducerConnection})
}

// brokerStats fetches VIEW_BROKER_STATS_DATA.
func (a *admin) brokerStats(addr, statsName, statsKey string) (*brokerStatsData, error) {
	resp, err := a.call(addr, protocol.ViewBrokerStatsData, remoting.FieldsOf("statsName", statsName, "statsKey", statsKey), nil)
	if err != nil {
		return nil, err
	}
	var bsd brokerStatsData
	if err := decodeBody(resp.Body, &bsd); err != nil {
		return nil, fmt.Errorf("bad broker stats body from %s: %v", addr, err)
	}
	return &bsd, nil
}

// compute24HourSum is StatsAllSubCommand.compute24HourSum.
func compute24HourSum(b *brokerStatsData) int64 {
	switch {
	case b.StatsDay.Sum != 0:
		return b.StatsDay.Sum
	case b.StatsHour.Sum != 0:
		return b.StatsHour.Sum
	default:
		return b.StatsMinute.Sum
	}
}

func setupStatsAll(f *flagSet) func(*env) error {
	active := f.flag("a", "activeTopic", "print active topic only")
	only := f.arg("t", "topic", "print select topic only")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		topics, err := adm.topicList()
		if err != nil {
			return err
		}
		// Java swallows every per-topic error; a broker that does not answer
		// VIEW_BROKER_STATS_DATA is reported once on stderr.
		warned := map[string]bool{}
		stats := func(addr, name, key string) *brokerStatsData {
			b, err := adm.brokerStats(addr, name, key)
			if err != nil {
				if codeOf(err) != protocol.Success && !warned[addr] && (codeOf(err) == protocol.RequestCodeNotSupported || codeOf(err) < 0) {
					warned[addr] = true
					e.warnf("statsAll: %v; its TPS and 24h columns show 0", err)
				}
				return &brokerStatsData{}
			}
			return b
		}
		e.printf("%-64s  %-64s %12s %11s %11s %14s %14s\n",
			"#Topic", "#Consumer Group", "#Accumulation", "#InTPS", "#OutTPS", "#InMsg24Hour", "#OutMsg24Hour")
		for _, topic := range topics {
			if isRetryOrDLQ(topic) || (only.has() && only.str() != "" && topic != only.str()) {
				continue
			}
			r, err := adm.route(topic)
			if err != nil {
				continue
			}
			groups, _ := adm.consumeByWho(topic, r)
			var inTPS float64
			var inToday int64
			var masters []string
			for _, bd := range r.BrokerDatas {
				if addr, ok := bd.BrokerAddrs[protocol.MasterID]; ok {
					masters = append(masters, addr)
					b := stats(addr, "TOPIC_PUT_NUMS", topic)
					inTPS += b.StatsMinute.Tps
					inToday += compute24HourSum(b)
				}
			}
			if len(groups) == 0 {
				if !active.has() || inToday > 0 {
					e.printf("%-64s  %-64s %12d %11.2f %11s %14d %14s\n", frontStringAtLeast(topic, 64), "", 0, inTPS, "", inToday, "NO_CONSUMER")
				}
				continue
			}
			for _, g := range groups {
				var outTPS float64
				var outToday int64
				for _, addr := range masters {
					b := stats(addr, "GROUP_GET_NUMS", topic+"@"+g)
					outTPS += b.StatsMinute.Tps
					outToday += compute24HourSum(b)
				}
				var acc int64
				if cs, err := adm.examineConsumeStats(g, topic); err == nil {
					if acc = cs.totalDiff(); acc < 0 {
						acc = 0
					}
				}
				if !active.has() || inToday > 0 || outToday > 0 {
					e.printf("%-64s  %-64s %12d %11.2f %11.2f %14d %14d\n", frontStringAtLeast(topic, 64), frontStringAtLeast(g, 64),
						acc, inTPS, outTPS, inToday, outToday)
				}
			}
		}
		return nil
	}
}

func setupProducerConnection(f *flagSet) func(*env) error {
	g := f.required("g", "producerGroup", "producer group name")
	t := f.required("t", "topic", "topic name")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		r, err := adm.route(t.str())
		if err != nil {
			return err
		}
		var conns []connection
		seen := map[string]bool{}
		for _, ref := range routeAddrs(r, "") {
			resp, err := adm.call(ref.addr, protocol.GetProducerConnectionList, protocol.EncodeHeader(&protocol.ProducerGroupHeader{ProducerGroup: g.str()}), nil)
			if err != nil {
				return err
			}
			var pc producerConnection
			if err := decodeBody(resp.Body, &pc); err != nil {
				return fmt.Errorf("bad producer connection body from %s: %v", ref.addr, err)
			}
			for _, c := range pc.ConnectionSet {
				if key := c.ClientID + "|" + c.ClientAddr; !seen[key] {
					seen[key] = true
					conns = append(conns, c)
				}
			}
		}
		for i, c := range conns {
			e.printf("%04d  %-32s %-22s %-8s %s\n", i+1, c.ClientID, c.ClientAddr, c.Language, versionDesc(c.Version))
		}
		return nil
	}
}

package main

// rmqd DLedger commands (not in Java's mqadmin): raftStatus (GET_RAFT_STATUS
// 2102), raftEvents (GET_RAFT_EVENTS 2101) and leadershipTransfer
// (RAFT_TRANSFER_LEADERSHIP 2103; alias transferLeadership). With -c they ask every replica of every
// broker group of the cluster (masters and slaves).

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

func init() {
	register(&command{name: "raftStatus", desc: "Print the DLedger (Raft) state of brokers (rmqd).", setup: setupRaftStatus})
	register(&command{name: "raftEvents", desc: "Print the role-change events of brokers (rmqd).", setup: setupRaftEvents})
	register(&command{name: "leadershipTransfer", desc: "Hand DLedger leadership to another replica (rmqd).", setup: setupTransferLeadership})
	// The name the first version shipped with.
	register(&command{name: "transferLeadership", desc: "Alias of leadershipTransfer.", setup: setupTransferLeadership})
}

func setupRaftStatus(f *flagSet) func(*env) error {
	b := f.arg("b", "brokerAddr", "Broker address")
	c := f.arg("c", "clusterName", "which cluster")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		addrs, err := adm.brokerTargets(b, c, true)
		if err != nil {
			return err
		}
		e.printf("%-20s %-22s %-6s %-9s %-6s %-7s %-4s %-10s %-10s %-10s %-10s %s\n",
			"#Broker Name", "#Addr", "#Self", "#Role", "#Term", "#Leader", "#BID", "#Begin", "#End", "#Committed", "#MetaIndex", "#Peers(match/lag/lastContactMs)")
		var failed []error
		for _, addr := range addrs {
			resp, err := adm.call(addr, protocol.GetRaftStatus, remoting.Fields{}, nil)
			var st protocol.RaftStatusBody
			if err == nil {
				err = json.Unmarshal(resp.Body, &st)
			}
			if err != nil {
				if len(addrs) > 1 { // one target: its error is the one line
					e.warnf("%s: %v", addr, err)
				}
				failed = append(failed, err)
				continue
			}
			peers := make([]string, 0, len(st.Peers))
			for _, p := range st.Peers {
				peers = append(peers, fmt.Sprintf("%s:%d/%d/%d", p.ID, p.MatchIndex, p.Lag, p.LastContactMillis))
			}
			e.printf("%-20s %-22s %-6s %-9s %-6d %-7s %-4d %-10d %-10d %-10d %-10d %s\n",
				st.BrokerName, addr, st.SelfID, st.Role, st.Term, st.LeaderID, st.BrokerID,
				st.LedgerBeginIndex, st.LedgerEndIndex, st.CommittedIndex, st.MetadataAppliedIndex, strings.Join(peers, ","))
		}
		return errors.Join(failed...)
	}
}

func setupRaftEvents(f *flagSet) func(*env) error {
	b := f.arg("b", "brokerAddr", "Broker address")
	c := f.arg("c", "clusterName", "which cluster")
	since := f.arg("s", "sinceSeq", "only events after this sequence number")
	limit := f.arg("l", "limit", "only the newest N events")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		addrs, err := adm.brokerTargets(b, c, true)
		if err != nil {
			return err
		}
		ext := remoting.Fields{}
		for _, o := range []struct {
			opt *option
			key string
		}{{since, "sinceSeq"}, {limit, "limit"}} {
			if o.opt.has() {
				if _, err := strconv.ParseInt(o.opt.str(), 10, 64); err != nil {
					return usagef("-%s must be a number", o.opt.short)
				}
				ext.Set(o.key, o.opt.str())
			}
		}
		var failed []error
		for _, addr := range addrs {
			resp, err := adm.call(addr, protocol.GetRaftEvents, ext, nil)
			var body protocol.RaftEventsBody
			if err == nil {
				err = json.Unmarshal(resp.Body, &body)
			}
			if err != nil {
				if len(addrs) > 1 { // one target: its error is the one line
					e.warnf("%s: %v", addr, err)
				}
				failed = append(failed, err)
				continue
			}
			e.printf("%s: %d role changes since start (ring of %d)\n", addr, body.Total, body.Capacity)
			for _, ev := range body.Events {
				steps := make([]string, 0, len(ev.Steps))
				for _, s := range ev.Steps {
					st := fmt.Sprintf("%s=%.1fms", s.Name, s.Millis)
					if s.Error != "" {
						st += "(" + s.Error + ")"
					}
					steps = append(steps, st)
				}
				reg := "not yet"
				if ev.RegisteredMillis > 0 {
					reg = fmt.Sprintf("%.1fms", ev.RegisteredMillis)
				}
				e.printf("  #%d %s term %d->%d %s->%s leader %q->%q brokerId %d->%d total %.1fms registered %s: %s [%s]\n",
					ev.Seq, time.UnixMilli(ev.Timestamp).Format("2006-01-02 15:04:05.000"), ev.OldTerm, ev.Term,
					ev.OldRole, ev.NewRole, ev.OldLeader, ev.NewLeader, ev.OldBrokerID, ev.NewBrokerID,
					ev.TotalMillis, reg, ev.Reason, strings.Join(steps, " "))
			}
		}
		return errors.Join(failed...)
	}
}

func setupTransferLeadership(f *flagSet) func(*env) error {
	b := f.required("b", "brokerAddr", "address of the current leader (master)")
	t := f.required("t", "target", "dLegerSelfId of the new leader, e.g. n1")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		resp, err := adm.call(b.str(), protocol.RaftTransferLeadership, remoting.FieldsOf("target", t.str()), nil)
		if err != nil {
			return err
		}
		e.printf("%s\n", resp.Remark)
		return nil
	}
}

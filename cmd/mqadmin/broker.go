package main

// Broker commands: brokerStatus, getBrokerConfig, updateBrokerConfig.

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/rmqd/rmqd/conf"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

func init() {
	register(&command{name: "brokerStatus", desc: "Fetch broker runtime status data.", setup: setupBrokerStatus})
	register(&command{name: "getBrokerConfig", desc: "Get broker config by cluster or special broker.", setup: setupGetBrokerConfig})
	register(&command{name: "updateBrokerConfig", desc: "Update broker's config.", setup: setupUpdateBrokerConfig})
}

func setupBrokerStatus(f *flagSet) func(*env) error {
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
		withAddr := !b.has()
		var failed []error
		for _, addr := range addrs {
			kv, err := adm.runtimeInfo(addr)
			if err != nil {
				if !withAddr {
					return err
				}
				e.warnf("%v", err)
				failed = append(failed, err)
				continue
			}
			keys := make([]string, 0, len(kv))
			for k := range kv {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if withAddr {
					e.printf("%-24s %-32s: %s\n", addr, k, kv[k])
				} else {
					e.printf("%-32s: %s\n", k, kv[k])
				}
			}
		}
		return errors.Join(failed...)
	}
}

// brokerConfig fetches GET_BROKER_CONFIG as ordered entries.
func (a *admin) brokerConfig(addr string) ([]conf.Entry, error) {
	resp, err := a.call(addr, protocol.GetBrokerConfig, remoting.Fields{}, nil)
	if err != nil {
		return nil, err
	}
	entries, err := conf.ReadProperties(bytes.NewReader(resp.Body))
	if err != nil {
		return nil, fmt.Errorf("bad broker config body from %s: %v", addr, err)
	}
	return entries, nil
}

func printConfig(e *env, entries []conf.Entry) {
	for _, en := range entries {
		e.printf("%-50s=  %s\n", en.Key, en.Value)
	}
}

func setupGetBrokerConfig(f *flagSet) func(*env) error {
	b := f.arg("b", "brokerAddr", "get which broker")
	c := f.arg("c", "clusterName", "get which cluster")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		show := func(prefix, addr string) error {
			entries, err := adm.brokerConfig(addr)
			if err != nil {
				return err
			}
			e.printf("%s", prefix)
			printConfig(e, entries)
			e.printf("\n")
			return nil
		}
		if b.has() {
			return show(fmt.Sprintf("============%s============\n", b.str()), b.str())
		}
		if !c.has() {
			return usagef("one of -b (broker address) or -c (cluster name) is required")
		}
		ci, err := adm.clusterInfo()
		if err != nil {
			return err
		}
		names, err := brokerNamesOfCluster(ci, c.str())
		if err != nil {
			return err
		}
		for _, n := range names {
			bd := ci.BrokerAddrTable[n]
			master, ok := bd.BrokerAddrs[protocol.MasterID]
			if !ok {
				continue
			}
			if err := show(fmt.Sprintf("============Master: %s============\n", master), master); err != nil {
				return err
			}
			for _, id := range sortedIDs(bd.BrokerAddrs) {
				if id == protocol.MasterID {
					continue
				}
				slave := bd.BrokerAddrs[id]
				if err := show(fmt.Sprintf("============My Master: %s=====Slave: %s============\n", master, slave), slave); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

func setupUpdateBrokerConfig(f *flagSet) func(*env) error {
	b := f.arg("b", "brokerAddr", "update which broker")
	c := f.arg("c", "clusterName", "update which cluster")
	all := f.arg("a", "updateAllBroker", "update all brokers include slave")
	k := f.required("k", "key", "config key")
	v := f.required("v", "value", "config value")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		addrs, err := adm.brokerTargets(b, c, all.has())
		if err != nil {
			return err
		}
		body := []byte(k.str() + "=" + v.str() + "\n")
		for _, addr := range addrs {
			resp, err := adm.call(addr, protocol.UpdateBrokerConfig, remoting.Fields{}, body)
			if err != nil {
				return err
			}
			if resp.Remark != "" {
				e.warnf("%s: %s", addr, oneLine(resp.Remark))
			}
			e.printf("update broker config success, %s\n", addr)
		}
		return nil
	}
}

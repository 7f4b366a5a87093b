package main

// Name-server commands: wipeWritePerm, addWritePerm, getNamesrvConfig.

import (
	"bytes"
	"fmt"

	"github.com/rmqd/rmqd/conf"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

func init() {
	register(&command{name: "wipeWritePerm", desc: "Wipe write perm of broker in all name server you defined in the -n param.",
		setup: func(f *flagSet) func(*env) error { return setupWritePerm(f, false) }})
	register(&command{name: "addWritePerm", desc: "Add write perm of broker in all name server you defined in the -n param.",
		setup: func(f *flagSet) func(*env) error { return setupWritePerm(f, true) }})
	register(&command{name: "getNamesrvConfig", desc: "Get configs of name server.", setup: setupGetNamesrvConfig})
}

// setupWritePerm is WipeWritePermSubCommand (add=false) and
// AddWritePermSubCommand (add=true): every name server of -n is asked;
// any failure makes the exit status non-zero.
func setupWritePerm(f *flagSet, add bool) func(*env) error {
	b := f.required("b", "brokerName", "broker name")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		verb, code := "wipe", protocol.WipeWritePermOfBroker
		if add {
			verb, code = "add", protocol.AddWritePermOfBroker
		}
		brokerName := b.str()
		failed := 0
		var lastErr error
		for _, ns := range adm.namesrvs {
			resp, err := adm.call(ns, code, protocol.EncodeHeader(&protocol.WipeWritePermOfBrokerRequestHeader{BrokerName: brokerName}), nil)
			if err != nil {
				e.printf("%s write perm of broker[%s] in name server[%s] Failed\n", verb, brokerName, ns)
				e.warnf("%v", err)
				failed++
				lastErr = err
				continue
			}
			var count int32
			if add {
				var h protocol.AddWritePermOfBrokerResponseHeader
				_ = protocol.DecodeHeader(&resp.ExtFields, &h)
				count = h.AddTopicCount
			} else {
				var h protocol.WipeWritePermOfBrokerResponseHeader
				_ = protocol.DecodeHeader(&resp.ExtFields, &h)
				count = h.WipeTopicCount
			}
			e.printf("%s write perm of broker[%s] in name server[%s] OK, %d\n", verb, brokerName, ns, count)
		}
		if failed > 0 {
			return fmt.Errorf("%s write perm failed on %d of %d name servers: %v", verb, failed, len(adm.namesrvs), lastErr)
		}
		return nil
	}
}

func setupGetNamesrvConfig(f *flagSet) func(*env) error {
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		for _, ns := range adm.namesrvs {
			resp, err := adm.call(ns, protocol.GetNamesrvConfig, remoting.Fields{}, nil)
			if err != nil {
				return err
			}
			entries, err := conf.ReadProperties(bytes.NewReader(resp.Body))
			if err != nil {
				return fmt.Errorf("bad name server config body from %s: %v", ns, err)
			}
			e.printf("============%s============\n", ns)
			printConfig(e, entries)
		}
		return nil
	}
}

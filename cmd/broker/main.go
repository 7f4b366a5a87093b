// Command broker runs an rmqd broker.
//
//	broker [-c broker.conf] [-n "ns1:9876;ns2:9876"] [-p] [--upgrade-check] [--pprof ADDR] [-h]
//
//	-c FILE  RocketMQ properties file (broker.conf); defaults when absent
//	-n ADDR  name servers, overriding namesrvAddr
//	-p       print the effective configuration and exit
//	--upgrade-check  report what the in-place upgrade of a classic store to
//	         DLedger mode would do (upgrade.go), change nothing, exit 0
//	--pprof ADDR  serve net/http/pprof (CPU, allocs, mutex, block) on ADDR,
//	         e.g. 127.0.0.1:6060; off by default (pprof.go)
//	-h       help
//
// It builds a broker.Broker from the configuration and starts it: the
// remoting protocol on listenPort and on the VIP port listenPort-2 (the
// same handlers), the store and metadata under storePathRootDir, and the
// name-server registration loop (every registerNameServerPeriod, to every
// name server in namesrvAddr, with the topic table, TBW102 included when
// autoCreateTopicEnable). Logs are JSON (zap) on stdout and appended to
// <storePathRootDir>/logs/broker.log. SIGTERM or SIGINT unregisters from
// the name servers and shuts down gracefully.
//
// With enableDLegerCommitLog=true the process is one replica of a DLedger
// (Raft) group (dledger.go, package replog): before the broker it opens the
// Java-compatible log store under <storePathRootDir>/dledger-<dLegerSelfId>/,
// listens for peers on its dLegerPeers address and starts the Raft node; the
// broker's store runs over that log (the DLedger data files are the
// commitlog). On SIGTERM a leading replica first hands leadership to its
// most caught-up peer (bounded by two election timeouts), so a rolling
// restart costs clients one transfer, not an election timeout. Shutdown
// then stops the broker (and its store) first, then the node,
// the peer transport and the log store.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/broker"
	"github.com/rmqd/rmqd/cmd/broker/replog"
	"github.com/rmqd/rmqd/conf"
	"github.com/rmqd/rmqd/internal/logging"
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(brokerGCPercent)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// brokerGCPercent is the broker's GOGC unless the environment sets one. Its
// live heap is small (tens of MB) while each send allocates a few KB (the
// frame, the record, the log entry), so at the default 100 the collector
// ran several times a second under load; each cycle scans the stacks of the
// ~1000 remoting workers and shrinks them, and they grow again on the next
// send (stack copying and root marking were ~8% of the leader's CPU in the
// issue 8 profiles). 400 runs it a quarter as often for a heap of a few
// hundred MB at most.
const brokerGCPercent = 400

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	confPath := fs.String("c", "", "broker config `file` (RocketMQ properties)")
	namesrvAddr := fs.String("n", "", "name server `addresses`, ';'-separated (overrides namesrvAddr)")
	printConf := fs.Bool("p", false, "print the effective configuration and exit")
	upgrade := fs.Bool("upgrade-check", false, "report what the in-place upgrade of a classic store to DLedger mode would do, change nothing, exit")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof (with mutex and block profiles) on `addr`; off when empty")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: broker [-c broker.conf] [-n \"ns1:9876;ns2:9876\"] [-p] [--upgrade-check] [--pprof ADDR] [-h]\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "broker: unexpected arguments %q\n", fs.Args())
		return 2
	}

	cfg := conf.DefaultBroker()
	var warnings []string
	if *confPath != "" {
		var err error
		cfg, warnings, err = conf.LoadBroker(*confPath)
		if err != nil {
			fmt.Fprintf(stderr, "broker: %v\n", err)
			return 1
		}
	}
	if *namesrvAddr != "" {
		if err := cfg.Set("namesrvAddr", *namesrvAddr); err != nil {
			fmt.Fprintf(stderr, "broker: -n: %v\n", err)
			return 1
		}
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "broker: invalid configuration: %v\n", err)
		return 1
	}
	if *printConf {
		fmt.Fprint(stdout, cfg.Properties())
		return 0
	}
	if *upgrade {
		if err := upgradeCheck(cfg, stdout); err != nil {
			fmt.Fprintf(stderr, "broker: --upgrade-check: %v\n", err)
			return 1
		}
		return 0
	}

	log, closeLog, err := logging.New(stdout, filepath.Join(cfg.StorePathRootDir, "logs", "broker.log"))
	if err != nil {
		fmt.Fprintf(stderr, "broker: %v\n", err)
		return 1
	}
	defer closeLog()
	log = log.With(zap.String("brokerName", cfg.BrokerName))
	for _, w := range warnings {
		log.Warn("config", zap.String("file", *confPath), zap.String("warning", w))
	}

	if *pprofAddr != "" {
		addr, stop, err := startPprof(*pprofAddr)
		if err != nil {
			log.Error("pprof listen failed", zap.Error(err))
			return 1
		}
		defer stop()
		log.Info("pprof listening", zap.String("addr", addr.String()))
	}

	// DLedger mode: the replica (log store, peer transport, Raft node) runs
	// before the broker opens the store over it and stops after the broker
	// (and so the store) shut down.
	var opts broker.Options
	peerInfo := ""
	var rep *replog.Replica
	if cfg.EnableDLegerCommitLog {
		var err error
		rep, err = startReplica(cfg, log)
		if err != nil {
			log.Error("dledger replica start failed", zap.Error(err))
			return 1
		}
		defer rep.Close()
		opts.ReplicatedLog = rep.Log
		peerInfo = fmt.Sprintf(", DLedger peer %s on %s (group %s, data %s)", cfg.DLegerSelfID, rep.ListenAddr, cfg.DLegerGroup, cfg.DLedgerDir())
	}
	b, err := broker.NewWithOptions(cfg, log, opts)
	if err != nil {
		log.Error("broker init failed", zap.Error(err))
		return 1
	}
	if *confPath != "" {
		b.SetConfigFile(*confPath) // updateBrokerConfig rewrites it, as Java does
	}
	if err := b.Start(); err != nil {
		log.Error("broker start failed", zap.Error(err))
		b.Shutdown()
		return 1
	}
	brokerAddr := net.JoinHostPort(cfg.BrokerIP1, strconv.Itoa(cfg.ListenPort))
	fmt.Fprintf(stdout, "The broker[%s, %s] boot success. rmqd broker listening on 0.0.0.0:%d (VIP 0.0.0.0:%d), name servers %q%s\n",
		cfg.BrokerName, brokerAddr, cfg.ListenPort, cfg.VIPPort(), cfg.NamesrvAddr, peerInfo)

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	sig := <-sigc
	signal.Stop(sigc)
	log.Info("shutting down", zap.String("signal", sig.String()))
	if rep != nil {
		handOff(rep, cfg, log)
	}
	b.Shutdown()
	return 0
}

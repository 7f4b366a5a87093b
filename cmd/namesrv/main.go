// Command namesrv runs rmqd's name server (package namesrv) on a remoting
// server.
//
//	namesrv [-c namesrv.conf] [-n addr] [-p] [-h]
//
//	-c FILE  RocketMQ properties file (namesrv.conf); defaults when absent
//	-n ADDR  accepted for compatibility with Java's mqnamesrv and ignored
//	-p       print the effective configuration and exit
//	-h       help
//
// Logs are JSON (zap) on stdout and appended to ~/logs/rmqd/namesrv.log
// ($RMQD_LOG_DIR overrides the directory). SIGTERM or SIGINT shuts down
// gracefully.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/conf"
	"github.com/rmqd/rmqd/internal/logging"
	"github.com/rmqd/rmqd/namesrv"
	"github.com/rmqd/rmqd/remoting"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("namesrv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	confPath := fs.String("c", "", "name server config `file` (RocketMQ properties)")
	_ = fs.String("n", "", "name server `address` list (ignored by the name server; accepted like Java's mqnamesrv)")
	printConf := fs.Bool("p", false, "print the effective configuration and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: namesrv [-c namesrv.conf] [-n addr] [-p] [-h]\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "namesrv: unexpected arguments %q\n", fs.Args())
		return 2
	}

	cfg := conf.DefaultNamesrv()
	var warnings []string
	if *confPath != "" {
		var err error
		cfg, warnings, err = conf.LoadNamesrv(*confPath)
		if err != nil {
			fmt.Fprintf(stderr, "namesrv: %v\n", err)
			return 1
		}
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "namesrv: invalid configuration: %v\n", err)
		return 1
	}
	if *printConf {
		fmt.Fprint(stdout, cfg.Properties())
		return 0
	}

	logDir := os.Getenv("RMQD_LOG_DIR")
	if logDir == "" {
		logDir = conf.ExpandPath("~/logs/rmqd")
	}
	log, closeLog, err := logging.New(stdout, filepath.Join(logDir, "namesrv.log"))
	if err != nil {
		fmt.Fprintf(stderr, "namesrv: %v\n", err)
		return 1
	}
	defer closeLog()
	for _, w := range warnings {
		log.Warn("config", zap.String("file", *confPath), zap.String("warning", w))
	}

	// The effective config, shared with UPDATE_NAMESRV_CONFIG.
	var cfgMu sync.Mutex
	current := cfg.Clone()
	nsCfg := namesrv.DefaultConfig()
	nsCfg.Logger = log.Named("namesrv")
	nsCfg.KVConfigPath = cfg.KVConfigPath
	nsCfg.ScanInterval = time.Duration(cfg.ScanNotActiveBrokerInterval) * time.Millisecond
	nsCfg.BrokerTimeout = time.Duration(cfg.BrokerChannelExpiredTime) * time.Millisecond
	nsCfg.OrderMessageEnable = cfg.OrderMessageEnable
	nsCfg.ReturnOrderTopicConfigToBroker = cfg.ReturnOrderTopicConfigToBroker
	nsCfg.EnableAllTopicList = cfg.EnableAllTopicList
	nsCfg.EnableTopicList = cfg.EnableTopicList
	nsCfg.DeleteTopicWithBrokerRegistration = cfg.DeleteTopicWithBrokerRegistration
	nsCfg.ConfigProperties = func() string {
		cfgMu.Lock()
		defer cfgMu.Unlock()
		return current.Properties()
	}
	nsCfg.UpdateConfig = func(props map[string]string) error {
		cfgMu.Lock()
		defer cfgMu.Unlock()
		next := current.Clone()
		for k, v := range props {
			if err := next.Set(k, v); err != nil {
				return err
			}
		}
		if err := next.Validate(); err != nil {
			return err
		}
		current = next
		return nil
	}
	ns, err := namesrv.New(nsCfg)
	if err != nil {
		log.Error("name server init failed", zap.Error(err))
		return 1
	}

	mux := remoting.NewServeMux()
	ns.Register(mux)
	srv, err := remoting.NewServer(remoting.ServerConfig{
		Addr:         fmt.Sprintf("0.0.0.0:%d", cfg.ListenPort),
		MaxFrameSize: cfg.MaxFrameSize,
		Workers:      cfg.DefaultThreadPoolNums,
		Logger:       log.Named("remoting"),
		OnConnClose:  ns.ConnClosed,
	}, mux)
	if err != nil {
		log.Error("remoting server", zap.Error(err))
		return 1
	}
	if err := srv.Start(); err != nil {
		log.Error("listen failed", zap.Int("port", cfg.ListenPort), zap.Error(err))
		return 1
	}
	ns.Start()
	log.Info("name server started", zap.String("addr", srv.Addr()), zap.String("kvConfigPath", cfg.KVConfigPath))
	fmt.Fprintf(stdout, "The Name Server boot success. rmqd namesrv listening on %s\n", srv.Addr())

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	sig := <-sigc
	signal.Stop(sigc)
	log.Info("shutting down", zap.String("signal", sig.String()))
	if err := srv.Close(); err != nil {
		log.Warn("remoting server close", zap.Error(err))
	}
	ns.Close()
	log.Info("name server stopped")
	return 0
}

package replog

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/conf"
	"github.com/rmqd/rmqd/store"
)

// StoreConfig is the part of the broker's store configuration the classic
// recovery of an in-place upgrade needs (the same values broker.storeConfig
// sets: file sizes, index, delay levels, store host).
func StoreConfig(cfg *conf.BrokerConfig, logger *zap.Logger) store.Config {
	sc := store.DefaultConfig(cfg.StorePathRootDir)
	sc.CommitLogDir = cfg.CommitLogDir()
	sc.MappedFileSizeCommitLog = int64(cfg.MappedFileSizeCommitLog)
	sc.MappedFileSizeConsumeQueue = int64(cfg.MappedFileSizeConsumeQueue)
	sc.FlushInterval = time.Duration(cfg.FlushIntervalCommitLog) * time.Millisecond
	sc.MaxMessageSize = cfg.MaxMessageSize
	if cfg.BrokerIP1 != "" {
		sc.StoreHost = net.JoinHostPort(cfg.BrokerIP1, strconv.Itoa(cfg.ListenPort))
	}
	sc.MessageIndexEnable = cfg.MessageIndexEnable
	sc.MaxHashSlotNum = int32(cfg.MaxHashSlotNum)
	sc.MaxIndexNum = int32(cfg.MaxIndexNum)
	sc.MessageDelayLevel = cfg.MessageDelayLevel
	if logger != nil {
		sc.Logger = logger
	}
	return sc
}

// HasDataFiles reports whether the DLedger directory holds a data file.
func HasDataFiles(cfg *conf.BrokerConfig) (bool, error) {
	names, err := os.ReadDir(filepath.Join(cfg.DLedgerDir(), "data"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if len(n.Name()) == 20 && !n.IsDir() {
			return true, nil
		}
	}
	return false, nil
}

// upgradeStartPos is where an empty log store starts: on the first start
// in DLedger mode over a classic store, store.PrepareUpgrade recovers and
// seals the classic commitlog and returns dividedCommitlogOffset, which
// the log store makes durable by creating its first data file there. With
// DLedger data files present it changes nothing (and the log store ignores
// StartPos).
func upgradeStartPos(cfg *conf.BrokerConfig, logger *zap.Logger) (int64, error) {
	has, err := HasDataFiles(cfg)
	if err != nil || has {
		return 0, err
	}
	d, err := store.PrepareUpgrade(StoreConfig(cfg, logger.Named("upgrade")))
	if err != nil {
		return 0, fmt.Errorf("replog: in-place upgrade of %s: %w", cfg.CommitLogDir(), err)
	}
	if d%int64(cfg.MappedFileSizeCommitLog) != 0 {
		return 0, fmt.Errorf("replog: dividedCommitlogOffset %d is not a multiple of mappedFileSizeCommitLog %d", d, cfg.MappedFileSizeCommitLog)
	}
	if d > 0 {
		logger.Info("in-place upgrade: DLedger positions start at the classic commitlog's end", zap.Int64("dividedCommitlogOffset", d))
	}
	return d, nil
}

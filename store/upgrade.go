package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/internal/vfs"
)

// In-place upgrade of a classic store to DLedger mode (issue 6, dledger.md
// §5.5 dividedCommitlogOffset, design.md §6).
//
// The first start in DLedger mode over a store whose commitlog/ holds
// classic records and whose DLedger directory holds no data file runs
// PrepareUpgrade before the replicated log is opened:
//
//  1. the store is opened in classic mode (the usual classic recovery,
//     with or without an abort file: torn tails removed, consume queues and
//     the index truncated to the recovered end and re-dispatched up to it)
//     and shut down cleanly;
//  2. the commitlog is sealed: a BLANK marker at its write position unless
//     it already ends on a file boundary, fsynced; dividedCommitlogOffset
//     is the end of the last file holding records (a multiple of the file
//     size, so every replica with the same records derives the same value,
//     whatever empty preallocated files each one has);
//  3. the divide is recorded in <root>/dividedCommitlogOffset (written
//     atomically, fsynced) before the caller creates the replicated log's
//     first data file at that position (logstore.Config.StartPos).
//
// Every step is idempotent: a crash anywhere repeats the recovery (which
// finds the sealed end on the file boundary), or finds the divide file and
// only creates the log. Later starts find DLedger data and change nothing.
//
// Open in DLedger mode then serves physical offsets below the divide from
// the classic files (consume-queue pulls, offset msgIds, index queries) and
// everything from the divide on from the replicated log; consume queues
// keep their classic units and the queue offset table continues them.
//
// Metadata: the classic config/*.json files (topics, subscription groups,
// consumer and delay offsets) are the broker's metadata snapshot at log
// position 0; every replica of a group is upgraded from the same classic
// files (the precondition of an in-place upgrade, as in RocketMQ), so the
// snapshots are the group's common starting state and replicated system
// records apply on top of them.

// DivideFileName is the file under the store root that records the
// dividedCommitlogOffset once the classic commitlog is sealed.
const DivideFileName = "dividedCommitlogOffset"

// ReadDivide returns the recorded dividedCommitlogOffset (ok false when the
// store was never sealed for an upgrade).
func ReadDivide(fs vfs.FS, root string) (int64, bool, error) {
	if fs == nil {
		fs = vfs.Default
	}
	b, err := vfs.ReadFile(fs, filepath.Join(root, DivideFileName))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	v, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	if err != nil || v < 0 {
		return 0, false, fmt.Errorf("store: %s: bad content %q", DivideFileName, b)
	}
	return v, true, nil
}

// HasClassicRecords reports whether cfg's commitlog directory holds at
// least one classic record (read only).
func HasClassicRecords(cfg Config) (bool, error) {
	if err := cfg.setDefaults(); err != nil {
		return false, err
	}
	names, err := cfg.FS.ReadDir(cfg.CommitLogDir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if len(n) != 20 {
			continue
		}
		f, err := cfg.FS.OpenFile(filepath.Join(cfg.CommitLogDir, n), os.O_RDONLY)
		if err != nil {
			return false, err
		}
		var h [8]byte
		_, rerr := f.ReadAt(h[:], 0)
		f.Close()
		if rerr != nil {
			continue
		}
		size := int32(binary.BigEndian.Uint32(h[0:]))
		magic := int32(binary.BigEndian.Uint32(h[4:]))
		if size > 0 && magic != BlankMagicCode && magic != 0 {
			return true, nil
		}
	}
	return false, nil
}

// PrepareUpgrade recovers and seals the classic commitlog of cfg (see the
// comment above) and returns dividedCommitlogOffset, 0 when the commitlog
// holds no classic record (nothing to upgrade). Call it only while the
// replicated log has no data file; it is idempotent and crash-safe.
// cfg.ReplicatedLog is ignored.
func PrepareUpgrade(cfg Config) (int64, error) {
	cfg.ReplicatedLog = nil
	if err := cfg.setDefaults(); err != nil {
		return 0, err
	}
	if d, ok, err := ReadDivide(cfg.FS, cfg.RootDir); err != nil || ok {
		return d, err
	}
	has, err := HasClassicRecords(cfg)
	if err != nil || !has {
		return 0, err
	}
	log := cfg.Logger
	log.Info("upgrade: recovering the classic commitlog before switching to DLedger mode", zap.String("dir", cfg.CommitLogDir))
	s, err := Open(cfg)
	if err != nil {
		return 0, fmt.Errorf("store: upgrade: classic recovery: %w", err)
	}
	divide, err := s.sealClassic()
	fp := ""
	if err == nil {
		fp, err = s.fingerprint(divide)
	}
	if serr := s.Shutdown(); err == nil {
		err = serr
	}
	if err != nil {
		return 0, fmt.Errorf("store: upgrade: seal: %w", err)
	}
	if err := vfs.WriteFileAtomic(cfg.FS, filepath.Join(cfg.RootDir, DivideFileName), []byte(strconv.FormatInt(divide, 10)+"\n"+fp+"\n")); err != nil {
		return 0, err
	}
	if err := cfg.FS.SyncDir(cfg.RootDir); err != nil {
		return 0, err
	}
	log.Info("upgrade: classic commitlog sealed", zap.Int64("dividedCommitlogOffset", divide), zap.String("fingerprint", fp))
	return divide, nil
}

// sealClassic writes a BLANK marker at the classic write position unless it
// is on a file boundary, fsyncs it and returns the end of the last file
// holding records.
func (s *MessageStore) sealClassic() (int64, error) {
	end := s.classic.maxOffset()
	size := s.cfg.MappedFileSizeCommitLog
	if end%size == 0 {
		return end, nil
	}
	f := s.classic.files.find(end)
	if f == nil {
		return 0, fmt.Errorf("no commitlog file holds the write position %d", end)
	}
	rel := end - f.from
	if f.size-rel >= 8 {
		var blank [8]byte
		binary.BigEndian.PutUint32(blank[0:], uint32(f.size-rel))
		binary.BigEndian.PutUint32(blank[4:], 0xCBD43194) // BlankMagicCode
		if _, err := f.file.WriteAt(blank[:], rel); err != nil {
			return 0, err
		}
		if err := f.file.Sync(); err != nil {
			return 0, err
		}
	}
	return f.from + f.size, nil
}

// legacyDivide is recoverReplicated's check of the classic prefix: it
// returns the divide (0 without classic records) or why the store cannot
// open over rl.
func (s *MessageStore) legacyDivide(rl ReplicatedLog) (int64, error) {
	hasRecords := false
	for _, f := range s.classic.files.snapshot() {
		if _, ok := s.firstRecordTimestamp(f); ok {
			hasRecords = true
			break
		}
	}
	d, ok, err := ReadDivide(s.cfg.FS, s.cfg.RootDir)
	if err != nil {
		return 0, err
	}
	if !ok && hasRecords {
		// The divide file lost after the upgrade: the log's first data file
		// starts at the divide (it was created there), past the last
		// classic file.
		if last, b := s.classic.files.last(), rl.BeginPos(); last != nil && b > 0 && last.from+last.size <= b && rl.EndPos() > b {
			s.logger.Warn("upgrade: "+DivideFileName+" is missing; the divide is the replicated log's first position",
				zap.Int64("dividedCommitlogOffset", b))
			return b, nil
		}
	}
	if !ok {
		if hasRecords {
			return 0, fmt.Errorf("store: %s holds classic commitlog records that were not sealed for the upgrade to DLedger mode "+
				"(the broker seals them on its first start in DLedger mode while the DLedger directory is empty: store.PrepareUpgrade)",
				s.cfg.CommitLogDir)
		}
		return 0, nil
	}
	if b := rl.BeginPos(); b < d {
		return 0, fmt.Errorf("store: the replicated log begins at %d, below the classic commitlog's dividedCommitlogOffset %d: "+
			"its data directory was created without the divide (remove it to let the upgrade create it)", b, d)
	}
	return d, nil
}

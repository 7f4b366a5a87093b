package store

import (
	"context"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/internal/vfs"
)

// Agreement on the classic prefix (issue 6 §4). Every replica of an
// upgraded group must hold the same classic records below the divide. At
// the seal, PrepareUpgrade records a fingerprint next to the divide: the
// divide and the CRC32 of the last fingerprintTail bytes below it (the
// last records, the BLANK marker and the zeros after it). The first
// writable leader of the group appends its fingerprint as a record on
// UpgradeTopic (an ordinary message record, so it is in every replica's
// log); every replica compares it with its own when it dispatches it (and
// again at each open, from the topic's consume queue). A replica whose
// fingerprint differs refuses: it never becomes a writable leader and its
// classic reads fail, with an error naming the proposing peer and the
// remedy. A replica without classic files says so and serves new data.

// UpgradeTopic carries the classic-prefix fingerprint records (queue 0).
const UpgradeTopic = "rmqd_SYS_UPGRADE"

// fingerprintTail is how many bytes below the divide the fingerprint covers.
const fingerprintTail = 4 << 20

type upgradeState struct {
	local    string      // this replica's fingerprint, "" without a divide
	proposed atomic.Bool // a fingerprint record is in the log or being appended
	err      atomic.Pointer[error]
	warned   atomic.Bool
	noted    atomic.Bool // noteNoClassicBelow logged
	importFn atomic.Pointer[func(context.Context) error]
}

// upgradeImportTimeout bounds SetUpgradeImport's function.
const upgradeImportTimeout = 30 * time.Second

// SetUpgradeImport registers fn, run on the writable leader of an upgraded
// group just before it appends the classic-prefix fingerprint record (once
// per group: the record marks the upgrade complete). The broker replicates
// its metadata there (the classic config files' topics, groups, consumer
// and delay offsets), so a replica that started without the classic files
// gets them too. When fn fails no record is appended and the next writable
// leader runs it again, so fn must be idempotent. Set it before Start.
func (s *MessageStore) SetUpgradeImport(fn func(ctx context.Context) error) {
	if fn == nil {
		s.upg.importFn.Store(nil)
		return
	}
	s.upg.importFn.Store(&fn)
}

// noteNoClassicBelow: a replica whose replicated log's first entry (index
// 0) is above position 0 while it holds no classic files below it joined
// an upgraded group without them (its empty log began where the leader's
// first entry is). It says so once: physical offsets below are not served
// here (offset too small / not found), messages from there on are.
func (s *MessageStore) noteNoClassicBelow() {
	dl, ok := s.cl.(*dledgerLog)
	if !ok || dl.divide > 0 || s.upg.noted.Load() {
		return
	}
	b := dl.rl.BeginPos()
	if b <= 0 || dl.rl.EndPos() <= b {
		return
	}
	// Decided once (Status is a round trip to the log's goroutine).
	s.upg.noted.Store(true)
	if st := dl.rl.Status(); st.LedgerBeginIndex != 0 {
		return // a log whose first entries were removed by retention
	}
	s.logger.Warn("upgrade: this replica has no classic commitlog files; its replicated log begins at the group's dividedCommitlogOffset. "+
		"Old messages (physical offsets below it) are not served here, new ones are; to serve old ones too, stop it and give it a copy "+
		"of the classic store the group was upgraded from (commitlog, consumequeue, index, config; no dledger directory)",
		zap.Int64("dividedCommitlogOffset", b))
}

// UpgradeError is why this replica refuses its classic prefix (nil when it
// agrees with the group or has none).
func (s *MessageStore) UpgradeError() error {
	if p := s.upg.err.Load(); p != nil {
		return *p
	}
	return nil
}

// fingerprint computes the classic prefix fingerprint of a sealed store.
func (s *MessageStore) fingerprint(divide int64) (string, error) {
	from := max(divide-fingerprintTail, s.classic.minOffset())
	h := crc32.NewIEEE()
	buf := make([]byte, 1<<20)
	size := s.cfg.MappedFileSizeCommitLog
	prog := s.startProgress("upgrade: classic prefix fingerprint", from, divide)
	for pos := from; pos < divide; {
		prog.at(pos)
		n := min(int64(len(buf)), divide-pos, size-pos%size)
		if _, err := s.classic.readAt(buf[:n], pos); err != nil {
			return "", fmt.Errorf("store: fingerprint of the classic commitlog at %d: %w", pos, err)
		}
		h.Write(buf[:n])
		pos += n
	}
	prog.end(divide)
	return fmt.Sprintf("divide=%d tail=%d crc32=%08x", divide, divide-from, h.Sum32()), nil
}

// ReadFingerprint returns the classic-prefix fingerprint recorded at the
// seal in root's divide file ("" without one). DLedger mode hands it to the
// replicated log as the group fingerprint its votes carry, so a replica
// with another classic prefix can never lead the group (a majority of
// agreeing replicas refuse it) and a replica that has none leads only once
// it holds the group's entries.
func ReadFingerprint(fs vfs.FS, root string) string {
	if fs == nil {
		fs = vfs.Default
	}
	b, err := vfs.ReadFile(fs, filepath.Join(root, DivideFileName))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return ""
	}
	return strings.TrimSpace(lines[1])
}

// loadFingerprint sets the local fingerprint (recorded at the seal, else
// computed now).
func (s *MessageStore) loadFingerprint(divide int64) error {
	if divide == 0 {
		return nil
	}
	fp := ReadFingerprint(s.cfg.FS, s.cfg.RootDir)
	if fp == "" {
		var err error
		if fp, err = s.fingerprint(divide); err != nil {
			return err
		}
	}
	s.upg.local = fp
	return nil
}

// checkFingerprintQueue compares the last fingerprint record already in
// the log (a restart) with the local one.
func (s *MessageStore) checkFingerprintQueue() {
	cq := s.findConsumeQueue(UpgradeTopic, 0)
	if cq == nil || cq.maxOffset.Load() == 0 {
		return
	}
	s.upg.proposed.Store(true)
	u, ok := cq.unit(cq.maxOffset.Load() - 1)
	if !ok || u.Size <= 0 {
		return
	}
	buf := make([]byte, u.Size)
	if _, err := s.cl.readAt(buf, u.CommitLogOffset); err != nil {
		return
	}
	var v recordView
	if err := parseRecord(buf, &v, false); err == nil {
		s.onUpgradeRecord(v.body)
	}
}

// onUpgradeRecord compares a fingerprint record ("<fingerprint> from=<id>")
// with the local fingerprint (dispatcher, or Open).
func (s *MessageStore) onUpgradeRecord(body []byte) {
	s.upg.proposed.Store(true)
	fp, from, _ := strings.Cut(string(body), " from=")
	switch {
	case fp == s.upg.local:
		return
	case s.upg.local == "":
		if s.upg.warned.CompareAndSwap(false, true) {
			s.logger.Warn("upgrade: this replica has no classic commitlog files; the group's does (old messages are not served here, new ones are)",
				zap.String("peer", from), zap.String("peerFingerprint", fp))
		}
		return
	}
	err := fmt.Errorf("store: classic commitlog prefix differs from peer %s's (%s here, %s there): this replica refuses to serve it; "+
		"remedy: stop this replica, replace its store directory with a copy of %s's classic store (commitlog, consumequeue, index, config, "+
		"no dledger directory) or of the files the group was upgraded from, and restart", from, s.upg.local, fp, from)
	if s.upg.err.CompareAndSwap(nil, &err) {
		s.logger.Error("upgrade: classic prefix diverges", zap.Error(err))
	}
}

// proposeFingerprint: the writable leader appends its fingerprint once per
// group (role loop, after becoming writable).
func (s *MessageStore) proposeFingerprint() {
	if s.upg.local == "" || !s.upg.proposed.CompareAndSwap(false, true) {
		return
	}
	self := s.repl.log.Role().SelfID
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if fn := s.upg.importFn.Load(); fn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), upgradeImportTimeout)
			err := (*fn)(ctx)
			cancel()
			if err != nil {
				s.logger.Warn("upgrade: replicating the classic metadata failed; the next writable leader retries", zap.Error(err))
				s.upg.proposed.Store(false)
				return
			}
			s.logger.Info("upgrade: classic metadata replicated to the group")
		}
		m := &Message{Topic: UpgradeTopic, QueueID: 0, Body: []byte(s.upg.local + " from=" + self),
			BornTimestamp: s.cfg.Now().UnixMilli(), BornHost: s.cfg.StoreHost}
		r := s.PutMessage(context.Background(), m)
		if r.Status != PutOK {
			s.logger.Warn("upgrade: fingerprint record not appended; the next leader retries", zap.String("status", r.Status.String()), zap.Error(r.Err))
			s.upg.proposed.Store(false)
			return
		}
		s.logger.Info("upgrade: classic prefix fingerprint appended", zap.String("fingerprint", s.upg.local), zap.Int64("offset", r.WroteOffset))
	}()
}

package metadata

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/internal/vfs"
)

// File names under Options.Dir, as in RocketMQ.
const (
	TopicsFile            = "topics.json"
	SubscriptionGroupFile = "subscriptionGroup.json"
	ConsumerOffsetFile    = "consumerOffset.json"
	DelayOffsetFile       = "delayOffset.json"
)

const (
	fileTopics = iota
	fileGroups
	fileOffsets
	fileDelay
	numFiles
)

var fileNames = [numFiles]string{TopicsFile, SubscriptionGroupFile, ConsumerOffsetFile, DelayOffsetFile}

var errEmpty = errors.New("empty file")

// snapshotFile tracks one JSON file. mu serializes writers of that file (it
// is held across I/O, but never a table lock).
type snapshotFile struct {
	name string
	mu   sync.Mutex
	// guarded by mu:
	persisted uint64 // table change count last written (or loaded)
	index     int64  // applied index last written (or loaded)
	mainBad   bool   // the main file was corrupt at load; never rotate it into .bak
}

func (m *Metadata) path(i int) string { return filepath.Join(m.dir, m.files[i].name) }

func (m *Metadata) load() error {
	for i := range m.files {
		m.files[i] = &snapshotFile{name: fileNames[i]}
	}
	idx := make([]int64, 0, numFiles)
	var err error
	var ix int64
	var tf topicsFile
	if tf, ix, err = loadOne(m, fileTopics, decodeTopics); err != nil {
		return err
	}
	m.Topics.restore(tf)
	idx = append(idx, ix)

	var gf groupsFile
	if gf, ix, err = loadOne(m, fileGroups, decodeGroups); err != nil {
		return err
	}
	m.Groups.restore(gf)
	idx = append(idx, ix)

	var of offsetsFile
	if of, ix, err = loadOne(m, fileOffsets, decodeOffsets); err != nil {
		return err
	}
	m.Offsets.restore(of)
	idx = append(idx, ix)

	var df delayFile
	if df, ix, err = loadOne(m, fileDelay, decodeDelay); err != nil {
		return err
	}
	m.Delay.restore(df)
	idx = append(idx, ix)

	m.loaded = idx[0]
	for _, v := range idx[1:] {
		m.loaded = min(m.loaded, v)
	}
	return nil
}

type indexed interface {
	topicsFile | groupsFile | offsetsFile | delayFile
}

func appliedIndexOf(v any) int64 {
	switch f := v.(type) {
	case topicsFile:
		return f.AppliedIndex
	case groupsFile:
		return f.AppliedIndex
	case offsetsFile:
		return f.AppliedIndex
	case delayFile:
		return f.AppliedIndex
	}
	return 0
}

// loadOne reads file i, falling back to its .bak copy. It returns the
// decoded file (zero value when neither exists) and its applied index.
func loadOne[T indexed](m *Metadata, i int, decode func([]byte) (T, error)) (T, int64, error) {
	var zero T
	sf := m.files[i]
	path := m.path(i)
	data, err := vfs.ReadFile(m.fs, path)
	var mainErr error
	switch {
	case err == nil:
		v, derr := decode(data)
		if derr == nil {
			sf.index = appliedIndexOf(v)
			return v, sf.index, nil
		}
		mainErr = derr
		sf.mainBad = true
	case errors.Is(err, os.ErrNotExist):
	default:
		return zero, 0, fmt.Errorf("metadata: read %s: %w", path, err)
	}
	bak := path + ".bak"
	data, err = vfs.ReadFile(m.fs, bak)
	switch {
	case err == nil:
		v, derr := decode(data)
		if derr != nil {
			if mainErr != nil {
				return zero, 0, fmt.Errorf("metadata: %s is unparsable (%v) and so is its .bak (%v)", path, mainErr, derr)
			}
			return zero, 0, fmt.Errorf("metadata: %s is missing and its .bak is unparsable: %v", path, derr)
		}
		m.log.Warn("metadata file unusable, loaded its .bak copy",
			zap.String("file", path), zap.NamedError("mainError", mainErr))
		sf.index = appliedIndexOf(v)
		return v, sf.index, nil
	case errors.Is(err, os.ErrNotExist):
		if mainErr != nil {
			return zero, 0, fmt.Errorf("metadata: %s is unparsable and has no .bak: %w", path, mainErr)
		}
		return zero, 0, nil // first start
	default:
		return zero, 0, fmt.Errorf("metadata: read %s: %w", bak, err)
	}
}

func (m *Metadata) changesOf(i int) uint64 {
	switch i {
	case fileTopics:
		return m.Topics.changes()
	case fileGroups:
		return m.Groups.changes()
	case fileOffsets:
		return m.Offsets.changes()
	default:
		return m.Delay.changes()
	}
}

func (m *Metadata) snapshotOf(i int, index int64) ([]byte, uint64) {
	switch i {
	case fileTopics:
		return m.Topics.snapshot(index)
	case fileGroups:
		return m.Groups.snapshot(index)
	case fileOffsets:
		return m.Offsets.snapshot(index)
	default:
		return m.Delay.snapshot(index)
	}
}

// Persist writes every file whose table changed (or, with a replicated log,
// whose applied index moved) since it was last written. Each file is
// snapshotted under its table's lock and written outside it.
func (m *Metadata) Persist() error {
	m.advanceCoverage()
	var errs []error
	for i := range m.files {
		errs = append(errs, m.persistFile(i))
	}
	return errors.Join(errs...)
}

// PersistOffsets writes consumerOffset.json and delayOffset.json if changed
// (the broker's flushConsumerOffsetInterval / flushDelayOffsetInterval).
func (m *Metadata) PersistOffsets() error {
	return errors.Join(m.persistFile(fileOffsets), m.persistFile(fileDelay))
}

func (m *Metadata) persistFile(i int) error {
	sf := m.files[i]
	sf.mu.Lock()
	defer sf.mu.Unlock()
	// Read the index before the snapshot: the file then records a lower
	// bound of what it contains, and replaying from there is idempotent.
	index := m.applied.Load()
	if m.changesOf(i) == sf.persisted && index == sf.index {
		return nil
	}
	data, changes := m.snapshotOf(i, index)
	if err := m.writeRotating(m.path(i), data, !sf.mainBad); err != nil {
		return fmt.Errorf("metadata: write %s: %w", m.path(i), err)
	}
	sf.persisted, sf.index, sf.mainBad = changes, index, false
	return nil
}

// writeRotating replaces path with data, keeping the previous version as
// path.bak (RocketMQ's MixAll.string2File): write and fsync path.tmp, rename
// path to path.bak (when rotate), rename path.tmp to path, fsync the
// directory. A crash at any point leaves path or path.bak holding a
// complete version; Open falls back to .bak when path is missing.
func (m *Metadata) writeRotating(path string, data []byte, rotate bool) error {
	tmp := path + ".tmp"
	f, err := m.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if rotate && vfs.Exists(m.fs, path) {
		if err := m.fs.Rename(path, path+".bak"); err != nil {
			return err
		}
	}
	if err := m.fs.Rename(tmp, path); err != nil {
		return err
	}
	return m.fs.SyncDir(filepath.Dir(path))
}

// Start persists changed files every interval in a goroutine until Stop.
// Calling Start twice without Stop panics.
func (m *Metadata) Start(interval time.Duration) {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	if m.stopCh != nil {
		panic("metadata: Start called twice")
	}
	m.stopCh = make(chan struct{})
	m.doneCh = make(chan struct{})
	go m.run(interval, m.stopCh, m.doneCh)
}

func (m *Metadata) run(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := m.Persist(); err != nil {
				m.log.Error("metadata persist failed", zap.Error(err))
			}
		}
	}
}

// Stop ends the goroutine Start began (if any) and persists a last time.
func (m *Metadata) Stop() error {
	m.runMu.Lock()
	stop, done := m.stopCh, m.doneCh
	m.stopCh, m.doneCh = nil, nil
	m.runMu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	return m.Persist()
}

package logstore

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/dledger"
)

// DeleteBefore removes the oldest data files whose entries all have an
// index below index, never the last data file (nor one whose successor holds
// no entry), then the index files wholly below the new FirstIndex. The caller
// chooses index: min(committed, applied, slowest follower's match index + 1)
// so that no lagging follower is stranded and every replica deletes the same
// prefix. It returns how many data files were removed. Removal is made
// durable (directory fsync) before it returns. Driver goroutine only.
func (s *Store) DeleteBefore(index int64) (int, error) {
	if err := s.failure(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	closed, data, last := s.mu.closed, s.mu.data, s.mu.last
	s.mu.RUnlock()
	if closed {
		return 0, ErrClosed
	}
	if last < 0 {
		return 0, nil
	}
	s.flushMu.Lock() // no fsync may be in flight on files we remove
	defer s.flushMu.Unlock()
	k, newFirst := 0, int64(-1)
	for i := 0; i+1 < len(data); i++ {
		h, ok, err := s.readHeader(data[i+1], data[i+1].start)
		if err != nil {
			return 0, err
		}
		if !ok || h.index > index || h.index > last {
			break
		}
		k, newFirst = i+1, h.index
	}
	if k == 0 {
		return 0, nil
	}
	ifs := s.cfg.IndexFileSize
	s.mu.Lock()
	dropData := s.mu.data[:k:k]
	s.mu.data = append([]*file(nil), s.mu.data[k:]...)
	var keepIdx, dropIdx []*file
	for _, f := range s.mu.index {
		if f.start+ifs <= newFirst*SlotSize {
			dropIdx = append(dropIdx, f)
		} else {
			keepIdx = append(keepIdx, f)
		}
	}
	s.mu.index = keepIdx
	oldFirst := s.mu.first
	s.mu.first = newFirst
	if s.mu.runsFrom < newFirst {
		s.mu.runsFrom = newFirst
		i := 0
		for i+1 < len(s.mu.runs) && s.mu.runs[i+1].index <= newFirst {
			i++
		}
		s.mu.runs = append([]termRun(nil), s.mu.runs[i:]...)
	}
	s.mu.gen++
	s.mu.Unlock()
	s.log.Info("deleting old files", zap.Int("dataFiles", len(dropData)), zap.Int("indexFiles", len(dropIdx)),
		zap.Int64("firstWas", oldFirst), zap.Int64("first", newFirst), zap.Int64("before", index))
	if err := s.removeFiles(dropData, s.dataDir); err != nil {
		return 0, s.fail(err)
	}
	if err := s.removeFiles(dropIdx, s.indexDir); err != nil {
		return 0, s.fail(err)
	}
	// Sync, not just the directories: a directory fsync must never make a
	// newer file durable while an older file's tail is not (recovery relies
	// on what is durable being a prefix of the log).
	if _, err := s.syncLocked(true); err != nil {
		return 0, err
	}
	return k, nil
}

// AppendChecked is Append for a follower that received entries together
// with the leader's body checksums (crcs[i] is entries[i]'s bodyCrc as
// stored by the leader, 0 when unknown): every non-zero checksum is verified
// first and a mismatch fails the whole batch with ErrChecksum, writing
// nothing.
func (s *Store) AppendChecked(entries []dledger.Entry, crcs []uint32) error {
	if len(crcs) != len(entries) {
		return fmt.Errorf("%w: %d checksums for %d entries", ErrBadAppend, len(crcs), len(entries))
	}
	for i := range entries {
		if crcs[i] != 0 {
			if c := BodyCRC(entries[i].Body); c != crcs[i] {
				return fmt.Errorf("%w: entry %d body crc %08x, leader says %08x", ErrChecksum, entries[i].Index, c, crcs[i])
			}
		}
	}
	return s.Append(entries)
}

// DataFile describes one data file, for retention policies.
type DataFile struct {
	Start      int64 // position of its first byte (its name)
	FirstIndex int64 // index of its first entry at Start, -1 if none starts there
}

// DataFiles lists the data files, oldest first. A policy that deletes by
// disk usage picks the oldest files whose successor's FirstIndex is at or
// below the safe index and passes that index to DeleteBefore. Safe to call
// from any goroutine.
func (s *Store) DataFiles() []DataFile {
	s.mu.RLock()
	data, last := s.mu.data, s.mu.last
	s.mu.RUnlock()
	out := make([]DataFile, len(data))
	for i, f := range data {
		out[i] = DataFile{Start: f.start, FirstIndex: -1}
		if h, ok, _ := s.readHeader(f, f.start); ok && h.index <= last {
			out[i].FirstIndex = h.index
		}
	}
	return out
}

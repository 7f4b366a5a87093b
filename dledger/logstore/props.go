package logstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/internal/vfs"
)

// File names and property keys shared with Java DLedger (MemberState and
// DLedgerMmapFileStore).
const (
	currTermFile   = "currterm"
	checkpointFile = "checkpoint"
	keyCurrTerm    = "currTerm"
	keyVoteLeader  = "voteLeader"
	keyEndIndex    = "endIndex"
	keyCommitted   = "committedIndex"
	// keyCleanEnd is ours (Java ignores unknown keys): the log end recorded
	// by a clean Close, fsynced. When recovery ends exactly there it skips
	// the scans of the zero tail (which read up to a whole data file).
	keyCleanEnd = "rmqdCleanEnd"
)

// parseProperties reads the subset of java.util.Properties text that DLedger
// writes: one key=value (or key:value) per line, '#' and '!' comments, blank
// lines, whitespace around keys and separators. Escapes are not interpreted
// (DLedger never writes any for ids and numbers).
func parseProperties(data []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimLeft(strings.TrimRight(line, "\r"), " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=: \t\f")
		if i < 0 {
			m[line] = ""
			continue
		}
		key := line[:i]
		rest := strings.TrimLeft(line[i:], " \t\f")
		if rest != "" && (rest[0] == '=' || rest[0] == ':') {
			rest = strings.TrimLeft(rest[1:], " \t\f")
		}
		m[key] = rest
	}
	return m
}

// encodeHardState renders currterm exactly as Java's persistTerm does:
// "currTerm=<n>\nvoteLeader=<id or empty>\n".
func encodeHardState(hs dledger.HardState) []byte {
	return []byte(keyCurrTerm + "=" + strconv.FormatInt(hs.Term, 10) + "\n" + keyVoteLeader + "=" + hs.VotedFor + "\n")
}

func decodeHardState(data []byte) (dledger.HardState, error) {
	m := parseProperties(data)
	var hs dledger.HardState
	t, ok := m[keyCurrTerm]
	if !ok {
		return hs, fmt.Errorf("no %s key", keyCurrTerm)
	}
	term, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || term < 0 {
		return hs, fmt.Errorf("bad %s %q", keyCurrTerm, t)
	}
	hs.Term = term
	hs.VotedFor = strings.TrimSpace(m[keyVoteLeader])
	return hs, nil
}

// loadHardState reads currterm. A missing file means term 0, no vote. Java
// replaces the file by writing currterm.tmp, copying the old file to
// currterm.bak, deleting currterm and renaming; a crash in between leaves
// only .tmp (complete: it was written before the delete) and .bak, so those
// are tried in that order. A currterm that exists but does not parse is
// corruption: we never write one (the replace is atomic and fsynced), and
// guessing a term or vote could let this replica vote twice.
func loadHardState(fs vfs.FS, dir string) (dledger.HardState, error) {
	for i, name := range []string{currTermFile, currTermFile + ".tmp", currTermFile + ".bak"} {
		path := filepath.Join(dir, name)
		data, err := vfs.ReadFile(fs, path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return dledger.HardState{}, fmt.Errorf("logstore: read %s: %w", path, err)
		}
		hs, perr := decodeHardState(data)
		if perr != nil {
			if i == 0 {
				return hs, fmt.Errorf("%w: %s: %v", dledger.ErrCorrupt, path, perr)
			}
			continue
		}
		return hs, nil
	}
	return dledger.HardState{}, nil
}

// encodeCheckpoint renders checkpoint as Java's persistCheckPoint does,
// plus the clean-shutdown end when cleanEnd >= 0.
func encodeCheckpoint(endIndex, committed, cleanEnd int64) []byte {
	s := keyEndIndex + "=" + strconv.FormatInt(endIndex, 10) + "\n" + keyCommitted + "=" + strconv.FormatInt(committed, 10) + "\n"
	if cleanEnd >= 0 {
		s += keyCleanEnd + "=" + strconv.FormatInt(cleanEnd, 10) + "\n"
	}
	return []byte(s)
}

// loadCheckpoint reads committedIndex and the clean-shutdown end from
// checkpoint; -1 for each when absent or unreadable (it is only a hint, as
// in Java).
func loadCheckpoint(fs vfs.FS, dir string) (committed, cleanEnd int64) {
	data, err := vfs.ReadFile(fs, filepath.Join(dir, checkpointFile))
	if err != nil {
		return -1, -1
	}
	m := parseProperties(data)
	num := func(key string) int64 {
		v, ok := m[key]
		if !ok {
			return -1
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < -1 {
			return -1
		}
		return n
	}
	return num(keyCommitted), num(keyCleanEnd)
}

// writeFileNoSync replaces name through name.tmp and a rename, without
// fsync: used for the checkpoint, which is a restart hint that may be lost.
func writeFileNoSync(fs vfs.FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return fs.Rename(tmp, name)
}

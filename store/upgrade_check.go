package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// UpgradeReport is what an in-place upgrade to DLedger mode would do with
// a store (InspectUpgrade; bin/broker --upgrade-check prints it).
type UpgradeReport struct {
	CommitLogDir string
	// Files are the classic commitlog files (20-digit names), ascending.
	Files []string
	// MinPhyOffset is the first file's start; MaxPhyOffset the end of the
	// last valid record (where the classic write position is).
	MinPhyOffset, MaxPhyOffset int64
	// HasRecords: the commitlog holds classic records (an upgrade applies).
	HasRecords bool
	// Divide is dividedCommitlogOffset: the recorded one when Sealed, else
	// the one sealing would derive (the end of the last file with records).
	Divide int64
	// Sealed: the divide is recorded (a previous first start sealed it).
	Sealed bool
	// Queues maps "topic/queueId" to the consume queue's max offset (next
	// queue offset), as the classic files hold it.
	Queues map[string]int64
	// Fingerprint is the classic-prefix fingerprint the replicas compare
	// (upgrade_agree.go): the recorded one when Sealed, else computed from
	// the files as the seal would leave them (exact unless the recovery
	// removes a torn tail). Equal fingerprints on every replica mean the
	// group agrees on the classic prefix.
	Fingerprint string
	// Torn describes a record that ends the scan early (a torn tail the
	// recovery would remove), if any.
	Torn string
}

// InspectUpgrade reads cfg's store and reports the upgrade without
// changing anything (no recovery, no file created or extended).
func InspectUpgrade(cfg Config) (UpgradeReport, error) {
	if err := cfg.setDefaults(); err != nil {
		return UpgradeReport{}, err
	}
	r := UpgradeReport{CommitLogDir: cfg.CommitLogDir, Queues: map[string]int64{}}
	names, err := cfg.FS.ReadDir(cfg.CommitLogDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return r, err
	}
	for _, n := range names {
		if _, err := strconv.ParseInt(n, 10, 64); err == nil && len(n) == 20 {
			r.Files = append(r.Files, n)
		}
	}
	sort.Strings(r.Files)
	if len(r.Files) > 0 {
		r.MinPhyOffset, _ = strconv.ParseInt(r.Files[0], 10, 64)
		r.MaxPhyOffset = r.MinPhyOffset
	}
	// The write position: scan the last file that starts with a record.
	for i := len(r.Files) - 1; i >= 0; i-- {
		from, _ := strconv.ParseInt(r.Files[i], 10, 64)
		end, any, torn, err := scanClassicFile(cfg, filepath.Join(cfg.CommitLogDir, r.Files[i]), from)
		if err != nil {
			return r, err
		}
		if !any {
			continue
		}
		r.HasRecords, r.MaxPhyOffset, r.Torn = true, end, torn
		break
	}
	size := cfg.MappedFileSizeCommitLog
	if r.HasRecords {
		r.Divide = (r.MaxPhyOffset + size - 1) / size * size
	}
	if d, ok, err := ReadDivide(cfg.FS, cfg.RootDir); err != nil {
		return r, err
	} else if ok {
		r.Divide, r.Sealed = d, true
	}
	if r.Sealed {
		r.Fingerprint = ReadFingerprint(cfg.FS, cfg.RootDir)
	} else if r.HasRecords {
		if r.Fingerprint, err = inspectFingerprint(cfg, r.MinPhyOffset, r.MaxPhyOffset, r.Divide); err != nil {
			return r, err
		}
	}
	root := filepath.Join(cfg.RootDir, "consumequeue")
	topics, _ := cfg.FS.ReadDir(root)
	for _, topic := range topics {
		qids, _ := cfg.FS.ReadDir(filepath.Join(root, topic))
		for _, q := range qids {
			if _, err := strconv.Atoi(q); err != nil {
				continue
			}
			max, err := cqMaxOffset(cfg, filepath.Join(root, topic, q))
			if err != nil {
				return r, err
			}
			r.Queues[topic+"/"+q] = max
		}
	}
	return r, nil
}

// scanClassicFile walks the records of one commitlog file from its start:
// the end of the last valid one, whether there is any, and why the walk
// stopped early when it was not at a BLANK marker or zeros.
func scanClassicFile(cfg Config, path string, from int64) (end int64, any bool, torn string, err error) {
	f, err := cfg.FS.OpenFile(path, os.O_RDONLY)
	if err != nil {
		return 0, false, "", err
	}
	defer f.Close()
	size := cfg.MappedFileSizeCommitLog
	var h [8]byte
	var v recordView
	rel := int64(0)
	for rel+8 <= size {
		if n, _ := f.ReadAt(h[:], rel); n < 8 {
			break
		}
		total := int64(int32(binary.BigEndian.Uint32(h[:])))
		magic := int32(binary.BigEndian.Uint32(h[4:]))
		if magic == BlankMagicCode || total == 0 {
			break
		}
		if total < 8 || rel+total > size {
			torn = fmt.Sprintf("bad record size %d at %d", total, from+rel)
			break
		}
		buf := make([]byte, total)
		if n, _ := f.ReadAt(buf, rel); int64(n) < total {
			torn = fmt.Sprintf("short record at %d", from+rel)
			break
		}
		if perr := parseRecord(buf, &v, true); perr != nil || v.physicalOffset != from+rel {
			torn = fmt.Sprintf("invalid record at %d: %v", from+rel, perr)
			break
		}
		any = true
		rel += total
	}
	return from + rel, any, torn, nil
}

// cqMaxOffset is a consume queue's next queue offset: the last file's
// start plus its units up to the first zeroed one.
func cqMaxOffset(cfg Config, dir string) (int64, error) {
	names, err := cfg.FS.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var files []string
	for _, n := range names {
		if len(n) == 20 {
			files = append(files, n)
		}
	}
	if len(files) == 0 {
		return 0, nil
	}
	sort.Strings(files)
	last := files[len(files)-1]
	from, _ := strconv.ParseInt(last, 10, 64)
	b, err := readAllFS(cfg, filepath.Join(dir, last))
	if err != nil {
		return 0, err
	}
	n := int64(0)
	for p := 0; p+CQUnitSize <= len(b); p += CQUnitSize {
		if binary.BigEndian.Uint64(b[p:]) == 0 && binary.BigEndian.Uint32(b[p+8:]) == 0 {
			break
		}
		n++
	}
	return from/CQUnitSize + n, nil
}

func readAllFS(cfg Config, path string) ([]byte, error) {
	f, err := cfg.FS.OpenFile(path, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []byte
	buf := make([]byte, 1<<20)
	for off := int64(0); ; {
		n, err := f.ReadAt(buf, off)
		out = append(out, buf[:n]...)
		off += int64(n)
		if err != nil || n == 0 {
			return out, nil
		}
	}
}

// inspectFingerprint is (*MessageStore).fingerprint over the files as they
// are, with the BLANK marker the seal would write at end.
func inspectFingerprint(cfg Config, minPhy, end, divide int64) (string, error) {
	size := cfg.MappedFileSizeCommitLog
	from := max(divide-fingerprintTail, minPhy)
	var blank [8]byte
	if end%size != 0 {
		binary.BigEndian.PutUint32(blank[0:], uint32(size-end%size))
		binary.BigEndian.PutUint32(blank[4:], 0xCBD43194) // BlankMagicCode
	}
	h := crc32.NewIEEE()
	buf := make([]byte, 1<<20)
	for pos := from; pos < divide; {
		n := min(int64(len(buf)), divide-pos, size-pos%size)
		fileFrom := pos - pos%size
		f, err := cfg.FS.OpenFile(filepath.Join(cfg.CommitLogDir, fileName(fileFrom)), os.O_RDONLY)
		if err != nil {
			return "", err
		}
		got, _ := f.ReadAt(buf[:n], pos-fileFrom)
		f.Close()
		clear(buf[got:n])
		if end%size != 0 {
			for i := int64(0); i < 8; i++ {
				if p := end + i; p >= pos && p < pos+n {
					buf[p-pos] = blank[i]
				}
			}
		}
		h.Write(buf[:n])
		pos += n
	}
	return fmt.Sprintf("divide=%d tail=%d crc32=%08x", divide, divide-from, h.Sum32()), nil
}

package conf

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// UpdateFile rewrites the properties file at path so that every key in set
// has the given value, keeping comments, blank lines and the other entries
// as they are: an entry whose key matches (in any case) is replaced in
// place by "key=value" (every occurrence, if repeated), keys not present are
// appended in sorted order. The file is replaced atomically (temporary file,
// fsync, rename) and keeps its permissions. A missing file is created.
//
// This is what UPDATE_BROKER_CONFIG does to the -c file (Java rewrites the
// whole file; rmqd keeps the operator's comments). UpdateFile does not
// validate: Set the values on a Clone and Validate it first.
func UpdateFile(path string, set map[string]string) error {
	old, err := os.ReadFile(path)
	mode := os.FileMode(0o644)
	switch {
	case err == nil:
		if st, err := os.Stat(path); err == nil {
			mode = st.Mode().Perm()
		}
	case os.IsNotExist(err):
	default:
		return fmt.Errorf("conf: %w", err)
	}
	spans, err := readSpans(bytes.NewReader(old))
	if err != nil {
		return fmt.Errorf("conf: %s: %w", path, err)
	}
	want := map[string]string{} // lower-case key -> key as given
	for k := range set {
		want[strings.ToLower(k)] = k
	}
	lines := strings.SplitAfter(string(old), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	replace := map[int]string{} // first line (0-based) -> new text; other lines of the span dropped
	drop := map[int]bool{}
	done := map[string]bool{}
	for _, s := range spans {
		k, ok := want[strings.ToLower(s.Key)]
		if !ok {
			continue
		}
		replace[s.Line-1] = k + "=" + escapeValue(set[k]) + "\n"
		for l := s.Line; l < s.end; l++ {
			drop[l] = true
		}
		done[k] = true
	}
	var b strings.Builder
	for i, l := range lines {
		if drop[i] {
			continue
		}
		if r, ok := replace[i]; ok {
			b.WriteString(r)
			continue
		}
		b.WriteString(l)
	}
	var rest []string
	for k := range set {
		if !done[k] {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	if len(rest) > 0 && b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
		b.WriteByte('\n')
	}
	for _, k := range rest {
		b.WriteString(k + "=" + escapeValue(set[k]) + "\n")
	}
	return writeFileAtomic(path, []byte(b.String()), mode)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("conf: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("conf: %w", err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("conf: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("conf: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("conf: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("conf: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

package vfs

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// MemFS is an in-memory FS that remembers what was made durable:
//   - a file's bytes as of its last Sync, and
//   - a directory's entries as of its last SyncDir.
//
// CrashClone returns the filesystem a machine would find after losing power
// now. Safe for concurrent use.
type MemFS struct {
	mu      sync.Mutex
	dirs    map[string]bool     // existing directories (always durable: MkdirAll is rare and tests do not care)
	entries map[string]*memNode // current name -> node
	durable map[string]*memNode // name -> node as of the parent's last SyncDir
}

type memNode struct {
	data   []byte // current contents, including unsynced writes
	synced []byte // contents as of the last Sync
}

// NewMem returns an empty MemFS with a root directory.
func NewMem() *MemFS {
	return &MemFS{dirs: map[string]bool{"/": true, ".": true}, entries: map[string]*memNode{}, durable: map[string]*memNode{}}
}

func clean(name string) string { return filepath.Clean(name) }

func (m *MemFS) OpenFile(name string, flag int) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.entries[name]
	if ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0 {
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrExist}
	}
	if !ok {
		if flag&os.O_CREATE == 0 {
			return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
		}
		if !m.dirs[filepath.Dir(name)] {
			return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
		}
		n = &memNode{}
		m.entries[name] = n
	}
	if flag&os.O_TRUNC != 0 {
		n.data = n.data[:0:0]
	}
	return &memFile{fs: m, node: n, name: name, readOnly: flag&(os.O_WRONLY|os.O_RDWR) == 0}, nil
}

func (m *MemFS) Remove(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[name]; ok {
		delete(m.entries, name)
		return nil
	}
	if m.dirs[name] {
		prefix := name + string(filepath.Separator)
		for k := range m.entries {
			if strings.HasPrefix(k, prefix) {
				return &os.PathError{Op: "remove", Path: name, Err: fmt.Errorf("directory not empty")}
			}
		}
		delete(m.dirs, name)
		return nil
	}
	return &os.PathError{Op: "remove", Path: name, Err: os.ErrNotExist}
}

func (m *MemFS) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.entries[oldname]
	if !ok {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: os.ErrNotExist}
	}
	delete(m.entries, oldname)
	m.entries[newname] = n
	return nil
}

func (m *MemFS) MkdirAll(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	for d := dir; ; d = filepath.Dir(d) {
		m.dirs[d] = true
		if d == filepath.Dir(d) {
			break
		}
	}
	return nil
}

func (m *MemFS) ReadDir(dir string) ([]string, error) {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[dir] {
		return nil, &os.PathError{Op: "readdir", Path: dir, Err: os.ErrNotExist}
	}
	seen := map[string]bool{}
	for k := range m.entries {
		if filepath.Dir(k) == dir {
			seen[filepath.Base(k)] = true
		}
	}
	for d := range m.dirs {
		if d != dir && filepath.Dir(d) == dir {
			seen[filepath.Base(d)] = true
		}
	}
	names := make([]string, 0, len(seen))
	for k := range seen {
		names = append(names, k)
	}
	sort.Strings(names)
	return names, nil
}

func (m *MemFS) Stat(name string) (int64, bool, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.entries[name]; ok {
		return int64(len(n.data)), false, nil
	}
	if m.dirs[name] {
		return 0, true, nil
	}
	return 0, false, &os.PathError{Op: "stat", Path: name, Err: os.ErrNotExist}
}

func (m *MemFS) SyncDir(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.durable {
		if filepath.Dir(k) == dir {
			delete(m.durable, k)
		}
	}
	for k, n := range m.entries {
		if filepath.Dir(k) == dir {
			m.durable[k] = n
		}
	}
	return nil
}

// CrashClone returns what survives a power loss now: the directory entries
// made durable by SyncDir, each holding its last synced bytes. When rng is
// non-nil, each file also keeps a random prefix of its unsynced tail (a torn
// write), as real disks do; pass nil to keep exactly the synced state.
func (m *MemFS) CrashClone(rng *rand.Rand) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := NewMem()
	for d := range m.dirs {
		c.dirs[d] = true
	}
	names := make([]string, 0, len(m.durable))
	for k := range m.durable {
		names = append(names, k)
	}
	sort.Strings(names) // rng draws in a fixed order
	for _, k := range names {
		n := m.durable[k]
		data := append([]byte(nil), n.synced...)
		if rng != nil && len(n.data) > len(n.synced) {
			keep := rng.IntN(len(n.data) - len(n.synced) + 1)
			data = append(data, n.data[len(n.synced):len(n.synced)+keep]...)
		}
		nn := &memNode{data: data, synced: append([]byte(nil), data...)}
		c.entries[k] = nn
		c.durable[k] = nn
	}
	return c
}

// ProcessCrashClone returns what survives kill -9 of a process: every write,
// synced or not (the page cache survives), and every directory entry.
func (m *MemFS) ProcessCrashClone() *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := NewMem()
	for d := range m.dirs {
		c.dirs[d] = true
	}
	for k, n := range m.entries {
		nn := &memNode{data: append([]byte(nil), n.data...)}
		nn.synced = append([]byte(nil), nn.data...)
		c.entries[k] = nn
		c.durable[k] = nn
	}
	return c
}

type memFile struct {
	fs       *MemFS
	node     *memNode
	name     string
	readOnly bool
	closed   bool
}

func (f *memFile) Name() string { return f.name }

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, os.ErrClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("vfs: negative offset")
	}
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, os.ErrClosed
	}
	if f.readOnly {
		return 0, fmt.Errorf("vfs: %s opened read-only", f.name)
	}
	if off < 0 {
		return 0, fmt.Errorf("vfs: negative offset")
	}
	end := off + int64(len(p))
	if end > int64(len(f.node.data)) {
		if end > int64(cap(f.node.data)) {
			grown := make([]byte, end, end+end/2)
			copy(grown, f.node.data)
			f.node.data = grown
		} else {
			f.node.data = f.node.data[:end]
		}
	}
	copy(f.node.data[off:], p)
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	f.node.synced = append(f.node.synced[:0:0], f.node.data...)
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	if size < 0 {
		return fmt.Errorf("vfs: negative size")
	}
	if size <= int64(len(f.node.data)) {
		f.node.data = f.node.data[:size]
		return nil
	}
	grown := make([]byte, size)
	copy(grown, f.node.data)
	f.node.data = grown
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return int64(len(f.node.data)), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	f.closed = true
	return nil
}

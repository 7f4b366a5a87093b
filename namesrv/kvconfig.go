package namesrv

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/rmqd/rmqd/protocol"
)

// KVStore is the name server's namespaced key/value configuration
// (PUT/GET/DELETE_KV_CONFIG, GET_KVLIST_BY_NAMESPACE), persisted to one JSON
// file in Java's kvConfig.json format:
//
//	{"configTable":{"ORDER_TOPIC_CONFIG":{"TopicA":"broker-a:4"}}}
//
// Every change rewrites the file (write to path.tmp, fsync, rename). The
// table lock is never held during file I/O; a second lock orders writers
// and a version number keeps an older snapshot from overwriting a newer one.
type KVStore struct {
	path string // "" = memory only

	persistMu        sync.Mutex
	persistedVersion uint64 // guarded by persistMu

	mu struct {
		sync.RWMutex
		table   map[string]map[string]string
		version uint64
	}
}

type kvFile struct {
	ConfigTable map[string]map[string]string `json:"configTable"`
}

// OpenKVStore loads path (a missing file is an empty store). path "" keeps
// the store in memory.
func OpenKVStore(path string) (*KVStore, error) {
	s := &KVStore{path: path}
	s.mu.table = map[string]map[string]string{}
	if path == "" {
		return s, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("namesrv: read kv config: %w", err)
	}
	if len(data) == 0 {
		return s, nil
	}
	var f kvFile
	if err := protocol.UnmarshalLenient(data, &f); err != nil {
		return nil, fmt.Errorf("namesrv: kv config %s: %w", path, err)
	}
	for ns, m := range f.ConfigTable {
		if m != nil {
			s.mu.table[ns] = m
		}
	}
	return s, nil
}

// Put sets namespace/key to value and persists the change.
func (s *KVStore) Put(namespace, key, value string) error {
	s.mu.Lock()
	m := s.mu.table[namespace]
	if m == nil {
		m = map[string]string{}
		s.mu.table[namespace] = m
	}
	if old, ok := m[key]; ok && old == value {
		s.mu.Unlock()
		return nil
	}
	m[key] = value
	snap, v := s.snapshotLocked()
	s.mu.Unlock()
	return s.persist(snap, v)
}

// Delete removes namespace/key (a no-op when absent) and persists.
func (s *KVStore) Delete(namespace, key string) error {
	s.mu.Lock()
	m := s.mu.table[namespace]
	if _, ok := m[key]; !ok {
		s.mu.Unlock()
		return nil
	}
	delete(m, key)
	if len(m) == 0 {
		delete(s.mu.table, namespace)
	}
	snap, v := s.snapshotLocked()
	s.mu.Unlock()
	return s.persist(snap, v)
}

// Get returns the value of namespace/key.
func (s *KVStore) Get(namespace, key string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.mu.table[namespace][key]
	return v, ok
}

// List returns a copy of a namespace, or nil when it is empty.
func (s *KVStore) List(namespace string) map[string]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := s.mu.table[namespace]
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (s *KVStore) snapshotLocked() ([]byte, uint64) {
	s.mu.version++
	if s.path == "" {
		return nil, s.mu.version
	}
	data, err := json.Marshal(kvFile{ConfigTable: s.mu.table})
	if err != nil {
		panic("namesrv: marshal kv config: " + err.Error()) // string maps always marshal
	}
	return data, s.mu.version
}

func (s *KVStore) persist(data []byte, version uint64) error {
	if s.path == "" {
		return nil
	}
	s.persistMu.Lock()
	defer s.persistMu.Unlock()
	if version <= s.persistedVersion {
		return nil // a newer snapshot is already on disk
	}
	if err := writeFileAtomic(s.path, data); err != nil {
		return fmt.Errorf("namesrv: persist kv config: %w", err)
	}
	s.persistedVersion = version
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
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
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

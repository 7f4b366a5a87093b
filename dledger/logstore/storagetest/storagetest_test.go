package storagetest_test

import (
	"testing"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/dledger/logstore"
	"github.com/rmqd/rmqd/dledger/logstore/storagetest"
	"github.com/rmqd/rmqd/internal/vfs"
)

// TestSuiteOnFileStore runs the suite on the file store (on MemFS).
func TestSuiteOnFileStore(t *testing.T) {
	cfg := logstore.Config{DataFileSize: 4096, IndexFileSize: 32 * 64}
	fss := map[dledger.LogStorage]*vfs.MemFS{}
	open := func(t *testing.T, fs *vfs.MemFS) dledger.LogStorage {
		s, err := logstore.Open(fs, "/x/dledger-n0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		fss[s] = fs
		return s
	}
	storagetest.Run(t, storagetest.Factory{
		New: func(t *testing.T) dledger.LogStorage { return open(t, vfs.NewMem()) },
		Reopen: func(t *testing.T, old dledger.LogStorage) dledger.LogStorage {
			crashed := fss[old].CrashClone(nil)
			old.Close()
			return open(t, crashed)
		},
	})
}

package logstore

import (
	"testing"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/dledger/logstore/storagetest"
	"github.com/rmqd/rmqd/internal/vfs"
)

func TestContract(t *testing.T) {
	fss := map[dledger.LogStorage]*vfs.MemFS{}
	storagetest.Run(t, storagetest.Factory{
		New: func(t *testing.T) dledger.LogStorage {
			fs := vfs.NewMem()
			s := mustOpen(t, fs, testConfig(t))
			fss[s] = fs
			return s
		},
		Reopen: func(t *testing.T, old dledger.LogStorage) dledger.LogStorage {
			crashed := fss[old].CrashClone(nil)
			old.Close()
			s := mustOpen(t, crashed, testConfig(t))
			fss[s] = crashed
			return s
		},
	})
}

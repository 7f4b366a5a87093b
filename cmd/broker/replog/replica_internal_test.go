package replog

import (
	"testing"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/conf"
)

// TestLogstoreConfigZeroFillsInSyncFlush: the log store fills ahead of the
// log only when every group commit waits for an fdatasync.
func TestLogstoreConfigZeroFillsInSyncFlush(t *testing.T) {
	for flush, want := range map[conf.FlushDiskType]bool{conf.SyncFlush: true, conf.AsyncFlush: false} {
		c := conf.DefaultBroker()
		c.FlushDiskType = flush
		if got := logstoreConfig(c, 0, zap.NewNop()).ZeroFillAhead > 0; got != want {
			t.Errorf("%s: zero fill ahead %v, want %v", flush, got, want)
		}
	}
}

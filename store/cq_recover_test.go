package store

import (
	"testing"

	"github.com/rmqd/rmqd/internal/vfs"
)

func TestConsumeQueueRecoverPastOneReadBuffer(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t, fs)
	cfg.MappedFileSizeConsumeQueue = 10000 * CQUnitSize
	cfg.MessageIndexEnable = false
	s := openStore(t, cfg)
	var last PutMessageResult
	for i := range 4000 { // 80000 bytes of units: more than countUnits' 64 KiB reads
		last = mustPut(t, s, newMsg("U", 0, i, ""))
	}
	waitAll(t, s)
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	bare := &MessageStore{cfg: cfg}
	cq := newConsumeQueue(bare, "U", 0)
	if err := cq.recover(); err != nil {
		t.Fatal(err)
	}
	defer cq.files.close()
	if cq.maxOffset.Load() != 4000 || cq.maxPhy.Load() != last.WroteOffset+int64(last.WroteBytes) {
		t.Fatalf("recovered max offset %d, max phy %d (want 4000, %d)", cq.maxOffset.Load(), cq.maxPhy.Load(), last.WroteOffset+int64(last.WroteBytes))
	}
}

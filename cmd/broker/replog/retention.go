package replog

import (
	"context"

	"github.com/rmqd/rmqd/dledger/logstore"
)

// dataFiler is a log storage that lists its data files (logstore.Store).
type dataFiler interface{ DataFiles() []logstore.DataFile }

// DataFileStarts lists where each data file begins, oldest first (nil when
// the storage does not keep files). With DeleteBefore it makes Log a
// store.ReplicatedLogRetention, used by the broker's clean service.
func (l *Log) DataFileStarts() []int64 {
	df, ok := l.st.(dataFiler)
	if !ok {
		return nil
	}
	files := df.DataFiles()
	out := make([]int64, len(files))
	for i, f := range files {
		out[i] = f.Start
	}
	return out
}

// DeleteBefore removes the data files below the one starting at pos,
// through dledger's Compact (which keeps uncommitted entries and, on the
// leader unless force, what a follower still needs).
func (l *Log) DeleteBefore(ctx context.Context, pos int64, force bool) (int, string, error) {
	df, ok := l.st.(dataFiler)
	if !ok {
		return 0, "", nil
	}
	index := int64(-1)
	for _, f := range df.DataFiles() {
		if f.Start == pos {
			index = f.FirstIndex
		}
	}
	if index <= 0 {
		return 0, "", nil
	}
	res, err := l.node.Compact(ctx, index, force)
	return res.Files, res.HeldBy, mapErr(err)
}

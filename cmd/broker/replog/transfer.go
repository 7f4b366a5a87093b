package replog

import "context"

// TransferLeadership hands leadership to the peer target (a dLegerSelfId)
// and waits until it leads; this replica must be the leader. It makes Log a
// broker.LeadershipTransferer, which RAFT_TRANSFER_LEADERSHIP (2103) uses.
func (l *Log) TransferLeadership(ctx context.Context, target string) error {
	return mapErr(l.node.TransferLeadership(ctx, target))
}

package protocol

// rmqd extensions for DLedger (Raft) mode: admin request codes that report
// the replica's Raft state and its role-change history. They are not part
// of RocketMQ; the numbers sit in a range Java's RequestCode does not use
// (it has 2001-2004 for cold-data flow control and 3001-3010 for ACL 2.0),
// so a Java broker answers them REQUEST_CODE_NOT_SUPPORTED (3) and a tool
// can tell a classic broker from an rmqd one.
//
//	GET_RAFT_EVENTS (2101)          ext: sinceSeq (optional, events with seq > sinceSeq),
//	                                     limit (optional, newest limit events)
//	                                body: RaftEventsBody (JSON)
//	GET_RAFT_STATUS (2102)          body: RaftStatusBody (JSON)
//	RAFT_TRANSFER_LEADERSHIP (2103) ext: target (DLedger peer id, "n1"); answered after the
//	                                transfer completed or failed; REQUEST_CODE_NOT_SUPPORTED
//	                                when the store cannot transfer.
//
// A classic (non-DLedger) rmqd broker answers GET_RAFT_STATUS with role
// "CLASSIC" and GET_RAFT_EVENTS with an empty list.
const (
	GetRaftEvents          int16 = 2101
	GetRaftStatus          int16 = 2102
	RaftTransferLeadership int16 = 2103
)

// Role names in RaftStatusBody.Role and RaftRoleEvent.OldRole/NewRole.
const (
	RaftRoleLeader   = "LEADER"
	RaftRoleFollower = "FOLLOWER"
	// RaftRoleUnknown: no leader known yet (boot, election in progress).
	RaftRoleUnknown = "UNKNOWN"
	// RaftRoleClassic: the broker does not run in DLedger mode.
	RaftRoleClassic = "CLASSIC"
)

// GetRaftEventsRequestHeader is the ext of GET_RAFT_EVENTS.
type GetRaftEventsRequestHeader struct {
	SinceSeq int64 `ext:"sinceSeq,omitempty"`
	Limit    int32 `ext:"limit,omitempty"`
}

// RaftTransferLeadershipRequestHeader is the ext of RAFT_TRANSFER_LEADERSHIP.
type RaftTransferLeadershipRequestHeader struct {
	Target string `ext:"target,required"`
}

// RaftStep is one timed step of a role change.
type RaftStep struct {
	Name   string  `json:"name"`
	Millis float64 `json:"millis"`
	Error  string  `json:"error,omitempty"`
}

// RaftRoleEvent is one role change of a broker replica, as kept in its
// bounded event ring.
type RaftRoleEvent struct {
	// Seq numbers the events of this process from 1.
	Seq int64 `json:"seq"`
	// Timestamp is when the broker learned of the change (unix ms).
	Timestamp int64  `json:"timestamp"`
	SelfID    string `json:"selfId"`
	Term      int64  `json:"term"`
	OldTerm   int64  `json:"oldTerm"`
	OldRole   string `json:"oldRole"`
	NewRole   string `json:"newRole"`
	OldLeader string `json:"oldLeader"`
	NewLeader string `json:"newLeader"`
	// OldBrokerID / NewBrokerID are the ids registered with the name
	// servers before and after (0 = master).
	OldBrokerID int64  `json:"oldBrokerId"`
	NewBrokerID int64  `json:"newBrokerId"`
	Reason      string `json:"reason"`
	// Steps are the hook's steps in the order they ran.
	Steps       []RaftStep `json:"steps"`
	TotalMillis float64    `json:"totalMillis"`
	// RegisteredMillis is the time from Timestamp until every name server
	// accepted the new registration; 0 while that has not happened.
	RegisteredMillis float64 `json:"registeredMillis,omitempty"`
	// DroppedOffsets counts buffered consumer-offset commits a stepping-down
	// leader could not replicate any more.
	DroppedOffsets int `json:"droppedOffsets,omitempty"`
}

// RaftEventsBody is the body of GET_RAFT_EVENTS: oldest event first.
type RaftEventsBody struct {
	Capacity int `json:"capacity"`
	// Total counts every event since the process started (the ring keeps
	// the newest Capacity of them).
	Total  int64           `json:"total"`
	Events []RaftRoleEvent `json:"events"`
}

// RaftPeer is one peer's replication state as seen by the leader.
type RaftPeer struct {
	ID         string `json:"id"`
	Addr       string `json:"addr,omitempty"`
	MatchIndex int64  `json:"matchIndex"`
	// Lag is the leader's ledger end index minus MatchIndex.
	Lag int64 `json:"lag"`
	// LastContactMillis is how long ago the peer last answered (-1 unknown).
	LastContactMillis int64 `json:"lastContactMillis"`
}

// RaftStatusBody is the body of GET_RAFT_STATUS (mqadmin raftStatus).
type RaftStatusBody struct {
	BrokerName string `json:"brokerName"`
	BrokerAddr string `json:"brokerAddr"`
	Group      string `json:"group,omitempty"`
	SelfID     string `json:"selfId,omitempty"`
	Role       string `json:"role"`
	Term       int64  `json:"term"`
	LeaderID   string `json:"leaderId,omitempty"`
	// BrokerID is the id this replica registers with (0 = master).
	BrokerID         int64 `json:"brokerId"`
	LedgerBeginIndex int64 `json:"ledgerBeginIndex"`
	LedgerEndIndex   int64 `json:"ledgerEndIndex"`
	CommittedIndex   int64 `json:"committedIndex"`
	// MetadataAppliedIndex / MetadataSnapshotIndex: the log position of the
	// last metadata record applied, and the one config/*.json cover.
	MetadataAppliedIndex  int64      `json:"metadataAppliedIndex"`
	MetadataSnapshotIndex int64      `json:"metadataSnapshotIndex"`
	MasterServices        bool       `json:"masterServices"`
	PendingOffsets        int        `json:"pendingOffsets"`
	Peers                 []RaftPeer `json:"peers,omitempty"`
	// LastEvent is the newest role change, if any.
	LastEvent *RaftRoleEvent `json:"lastEvent,omitempty"`
}

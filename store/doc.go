// Package store is rmqd's message store: RocketMQ's DefaultMessageStore with
// its on-disk format (protocol.md §5-§6), byte-compatible with RocketMQ 4.x,
// so a store written by a Java broker opens here and the other way round.
//
// # What it holds
//
//	storePathRootDir/
//	  commitlog/00000000000000000000 ...   every message, in arrival order
//	  consumequeue/<topic>/<queueId>/...   20-byte units pointing into the commitlog
//	  index/<yyyyMMddHHmmssSSS>            key index (KEYS words, UNIQ_KEY)
//	  checkpoint                           flush progress (timestamps)
//	  abort                                exists while the store runs
//	  lock                                 flock(2)ed while the store runs
//
// A put encodes the message once into the stored record layout, appends it to
// the commitlog under the put lock (which also assigns the queue offset and
// the store timestamp, so commitlog order is queue-offset order), and answers
// once the record is durable as FlushDiskType asks. The dispatcher goroutine
// follows the commitlog and derives consume queues and the index; the
// arriving listener is told after the unit exists. GetMessage reads units,
// filters by tag hash (and optionally by the record), then reads the records.
//
// # Caller duties
//
//  1. Open, then Start; Shutdown exactly once. Open recovers; after an
//     unclean stop (abort file present) it checks every record from the
//     checkpoint on.
//  2. Put messages with Topic (1..127 bytes), QueueID, BornHost/BornTimestamp,
//     SysFlag and Properties set; StoreHost may be left empty (Config.StoreHost).
//     The store does not rewrite topics: delay levels (SCHEDULE_TOPIC_XXXX,
//     REAL_TOPIC/REAL_QID) and transaction half topics are the broker's work.
//     PREPARED and ROLLBACK records get queue offset 0 and no consume-queue unit.
//  3. A batch (PutMessages) targets one topic and queue and is not transactional.
//  4. Treat PutMessageStatus.OK() as stored; FlushDiskTimeout is "stored but
//     not known durable" (Java answers SEND_OK-like FLUSH_DISK_TIMEOUT).
//     ServiceNotAvailable after a write or fsync error is sticky: the store
//     refuses puts until restarted (recovery decides what survived).
//  5. The listener runs on the dispatcher goroutine: never block in it.
//  6. GetMessageResult.Messages alias one buffer; do not append to them. Use
//     Body() for the pull response body.
//
// # Stored record (protocol.md §5.2), big-endian, IPv4 hosts
//
//	 0  TOTALSIZE        int32   whole record
//	 4  MAGICCODE        int32   0xDAA320A7 (v1; v2 0xDAA320AB = 2-byte topic length)
//	 8  BODYCRC          int32   CRC32-IEEE(body) & 0x7FFFFFFF
//	12  QUEUEID          int32
//	16  FLAG             int32
//	20  QUEUEOFFSET      int64   logical offset in the consume queue
//	28  PHYSICALOFFSET   int64   commitlog offset of byte 0 of this record
//	36  SYSFLAG          int32   0x1 compressed, 0xC tx type, 0x10/0x20 IPv6 born/store host
//	40  BORNTIMESTAMP    int64
//	48  BORNHOST         4+4     (16+4 if SYSFLAG&0x10)
//	56  STORETIMESTAMP   int64
//	64  STOREHOST        4+4     (16+4 if SYSFLAG&0x20)
//	72  RECONSUMETIMES   int32
//	76  PREPAREDTXOFFSET int64
//	84  BODYLENGTH int32 | BODY
//	    TOPICLENGTH int8 | TOPIC
//	    PROPERTIESLENGTH int16 | PROPERTIES   name 0x01 value 0x02 ...
//
// Offset message id (§5.5): hex(STOREHOST ip+port, PHYSICALOFFSET), 32 chars for IPv4.
//
// # Commitlog files (§6.1)
//
//	file N (name = 20-digit offset of its first byte, size MappedFileSizeCommitLog, preallocated sparse)
//	+----------+----------+-----+----------+---------------------------------+
//	| record   | record   | ... | record   | BLANK: int32 remaining | 0xCBD43194 |
//	+----------+----------+-----+----------+---------------------------------+
//
// A record never spans files: when the next record plus 8 bytes does not fit,
// the rest of the file becomes one BLANK filler and the record goes to the
// start of the next file.
//
// # Consume queue (§6.2)
//
//	consumequeue/<topic>/<queueId>/<20-digit byte offset>, 300000 units per file
//	unit k at byte k*20:  commitLogOffset int64 | size int32 | tagsCode int64
//
// tagsCode is Java String.hashCode(TAGS) (0 without tags); in
// SCHEDULE_TOPIC_XXXX it is the delivery time (store time + delay level).
// A queue starting at a non-zero offset has its first file's head filled with
// blank units (0, MaxInt32, 0).
//
// # Index file (§6.3)
//
//	header 40 B: beginTimestamp int64 | endTimestamp int64 | beginPhyOffset int64 |
//	             endPhyOffset int64 | hashSlotCount int32 | indexCount int32
//	slots:       MaxHashSlotNum x int32 (newest entry number, 0 = empty)
//	entries:     MaxIndexNum x (keyHash int32 | phyOffset int64 | timeDiff int32 s | prevIndex int32)
//
// Keys are "topic#UNIQ_KEY" and "topic#word" for each word of KEYS. Queries
// read every candidate record and check topic and key, so hash collisions and
// entries left over from a truncated tail are never returned.
//
// # Checkpoint (§6.4)
//
//	0 physicMsgTimestamp | 8 logicsMsgTimestamp | 16 indexMsgTimestamp |
//	24 masterFlushedOffset | 32 confirmPhyOffset       (int64 each, file 4 KiB)
//
// # Durability
//
// AsyncFlush: a put is answered after its bytes are written (pwrite into the
// page cache, so kill -9 loses nothing acknowledged); a flusher fsyncs every
// FlushInterval (consume queues, index and checkpoint every
// FlushConsumeQueueInterval). SyncFlush: a put is answered after an fsync covering it. The
// write path is group-committed: concurrent puts append under the put lock
// into a shared buffer, one elected writer writes everything queued with one
// WriteAt (flat combining; it yields once first when other puts are in
// flight, so they join the batch), and in SyncFlush mode the flusher goroutine does
// the WriteAt and the fsync for every waiting put at once. No lock is held
// across an fsync.
//
// Consume queues and the index are fsynced by the logic flusher, which then
// writes the checkpoint: logicsMsgTimestamp is the store time of the last
// record whose unit is durable, physicMsgTimestamp that of the last fsynced
// commitlog record.
//
// # Recovery
//
// Clean stop (no abort file): the last three commitlog files are checked.
// Otherwise: from the last file whose first record is not newer than
// min(checkpoint timestamps) - 3 s. Each record must validate: size, magic,
// field bounds, body CRC, PHYSICALOFFSET equal to its position; and for the
// last record also properties ending with 0x02 and a NUL-free topic (only the
// body is CRC-protected, and a torn suffix zeroes the trailing fields; an
// earlier record of that shape followed by valid ones is intact, as a foreign
// writer may omit the final 0x02). The first invalid record ends the
// log: later bytes are zeroed and later files removed, unless a later file
// holds records the checkpoint says were fsynced — then it is corruption, not
// a torn tail, and Open fails with ErrCorrupt. Consume queues drop units
// pointing past the end, the index header is pulled back, the tail is
// re-dispatched (units already present are skipped by queue offset) and the
// queue offset table is rebuilt from the consume queues.
//
// # Retention
//
// At the DeleteWhen hours (or at once when the disk is fuller than
// DiskMaxUsedSpaceRatio) commitlog files older than FileReservedTime are
// removed, oldest first, never the last one and never beyond what is flushed
// and dispatched; above DiskForceCleanRatio age is ignored. Consume-queue and
// index files wholly below the new minimum offset follow.
//
// In DLedger mode the replicated log's data files age out by the same rules
// (ReplicatedLogRetention, clean.go), bounded by what is dispatched and by
// the retention floor (SetRetentionFloor: the position the metadata files
// on disk cover, so a restart can still replay the system records it needs).
// The log clamps each request: a follower removes only committed entries,
// the leader only what every follower has stored (unless the disk is past
// DiskForceCleanRatio), so a lagging follower is never stranded.
//
// # The commitlog seam (DLedger mode, issue 5)
//
// Everything above the commitlog works on physical offsets through the small
// commitLog interface (commitlog.go): append a block of encoded records under
// the put lock (the log writes PHYSICALOFFSET), make them readable, wait until
// durable, scan records in order up to confirmOffset, read at a position,
// min/max offsets, flush. The dispatcher only follows confirmOffset: in
// classic mode that is everything written.
//
// # DLedger mode (replicated.go, replica.go, dledger_log.go)
//
// With Config.ReplicatedLog set, the commitlog is a Raft log laid out as Java
// DLedger's data files. The store never imports dledger: ReplicatedLog is
// its own narrow interface (append with a hook, read by position, begin/end/
// committed positions, a watch channel, role, status); cmd/broker/replog
// adapts a *dledger.Node to it.
//
//	entry at pos:  | 48-byte DLedger header | message record (TOTALSIZE ...) |
//	physical offset of the record = pos + 48 (offset msgIds, consume-queue units)
//	file tails:    | int32 -1 | int32 bytes left | zeros |   (padding, skipped)
//	no-op entries (magic 2, a new leader's first entry) are skipped
//
// Put: the records are encoded once, copied (the log keeps the bodies) and
// appended as one entry each. The append hook runs on the log's goroutine in
// log order and writes PHYSICALOFFSET, STORETIMESTAMP and the queue offset,
// taken from the queue-offset table there: queue offsets follow log order and
// a batch gets consecutive ones. The put answers once the batch is committed
// (ASYNC_FLUSH: a majority wrote it; SYNC_FLUSH: a majority fsynced it),
// NotLeader (retryable, PutMessageResult.Leader = leader's peer id) when this
// replica is not the writable leader or lost leadership before the commit,
// FlushSlaveTimeout after Config.ReplicationTimeout (it may still commit).
//
// Dispatch: confirmOffset is the committed position, so consume queues, the
// index, wake-ups, GetMessage and lookups only ever see committed records, on
// the leader and on followers alike; the role loop (runReplica) wakes the
// dispatcher whenever the committed position moves, so followers stay current.
//
// Roles: the store is writable only in the term it became ready in. A new
// Raft leader becomes writable once its log is entirely committed (its no-op
// included, so no entry of an earlier term is pending), the dispatcher reached
// the committed position, and the queue-offset table was rebuilt from the
// consume queues (recoverTopicQueueTable). Offsets stay dense: an entry a
// deposed leader appended but never committed is truncated by the new leader
// and never got a unit; within a term every appended entry commits or the
// term ends. A proposal that lands in a newer term than the one it was
// checked in (leadership lost and regained in between) becomes a ROLLBACK-
// type record, which gets no unit, and its put answers NotLeader. The role
// listener hears every completed change in order, on its own goroutine.
//
// System records (ProposeSystem): ordinary records on SystemTopic, queue 0,
// so Java tools parse them. The dispatcher hands each committed one to the
// system record handler on every replica, in log order; ProposeSystem returns
// after the local handler ran. They have consume-queue units, which is how
// ReplaySystemRecordsFrom finds the ones dispatched before the handler was
// set (a metadata snapshot records the offset it covers; the replay brings
// the tail). Topics never lists SystemTopic and DeleteTopics keeps it.
//
// Topic deletion (DeleteTopics) is a record on TopicOpsTopic (topic_ops.go):
// the leader's append hook resets the deleted topics' queue-offset counters
// where the record lands in the log, and every replica's dispatcher removes
// their consume queues when it reaches it, so deletions and the queues of a
// topic created again agree on every replica, after failovers and
// re-dispatches too.
//
// Recovery: committed entries never change and units only exist for committed
// entries, so units are wrong only if this replica's log lost data (power loss
// in async mode, a replaced directory): units past the log's end, or whose
// record does not match (size, PHYSICALOFFSET, topic, queue, queue offset),
// are truncated; dispatch resumes at the newest unit's end (after an unclean
// stop at the checkpoint's confirmPhyOffset, the dispatched position written
// after each consume-queue fsync, if earlier) and catches up to the committed
// position before Open returns.
//
// Durability in DLedger mode: a put (or system record) is acknowledged only
// once committed. ASYNC_FLUSH: a majority of replicas has written it (page
// cache; each replica fsyncs in the background every few tens of ms), so
// kill -9 of any number of replicas loses nothing acknowledged, and neither
// does a power loss of a minority; a simultaneous power loss of a majority
// can lose what they acknowledged but had not fsynced. SYNC_FLUSH: a majority
// has fsynced it (group commit: one fsync per replica for many puts), so it
// survives any crash or power loss as long as a majority of disks survive.
// Consume queues and the index are derived and rebuilt from the log.
//
// # In-place upgrade of a classic store (upgrade.go, upgrade_agree.go, issue 6)
//
// On the first start in DLedger mode over classic records (no DLedger data
// file yet), PrepareUpgrade runs the classic recovery, seals the commitlog
// (BLANK marker at its write position, fsync) and records
// dividedCommitlogOffset (the end of the last file with records) with a
// classic-prefix fingerprint in <root>/dividedCommitlogOffset; cmd/broker
// then creates the log store's first data file there (StartPos). Physical
// offsets below the divide are read from the classic files (pulls through
// the old consume-queue units, offset msgIds, the old index), everything
// from it on from the replicated log; queue offsets continue. Open in
// DLedger mode refuses unsealed classic records and a log beginning below
// the divide. The first writable leader appends its fingerprint on
// UpgradeTopic (after replicating the classic metadata through the broker's
// SetUpgradeImport hook, so a replica without the classic config files gets
// topics, groups and offsets too); a replica whose own differs refuses
// leadership and classic reads (UpgradeError). The fingerprint is also the
// dledger group fingerprint carried in votes: replicas whose fingerprints
// differ never vote for each other, so a diverged minority cannot lead, and
// a replica without a fingerprint leads only once it holds entries. A
// replica without the classic files follows from the leader's first entry
// (its empty log begins there), says so once (noteNoClassicBelow), answers
// offsets below it as not found, and can lead later. Classic files age out
// under the normal retention, the last one included. Long recoveries log
// progress (progress.go).
package store

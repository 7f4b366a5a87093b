// Package metadata holds a broker's metadata — topics, subscription groups,
// consumer offsets and delay-level progress — and keeps RocketMQ's JSON
// snapshots of it under <storePathRootDir>/config. It imports only
// internal/vfs and zap.
//
// # Tables
//
//	Metadata.Topics   *TopicManager        topics.json             TopicConfig per topic
//	Metadata.Groups   *GroupManager        subscriptionGroup.json  SubscriptionGroupConfig per group
//	Metadata.Offsets  *OffsetManager       consumerOffset.json     "topic@group" -> queueId -> offset
//	Metadata.Delay    *DelayOffsetManager  delayOffset.json        delay level -> offset
//
// Each table has its own DataVersion (counter, stateVersion, timestamp),
// bumped on every change that alters it (a no-op such as a lower offset
// commit or deleting a missing topic does not bump it). The broker sends
// Topics.DataVersion() with REGISTER_BROKER. The managers' methods only
// read; they are safe from any goroutine and return copies.
//
// # Changing metadata: operations
//
// Every change is an Op (kind + fields) applied by Metadata.Apply. The
// helpers PutTopic, DeleteTopic, PutGroup, DeleteGroup, CommitOffset(s),
// ResetOffsets, CloneOffsets, RemoveOffsets, CommitDelayOffset,
// ResetDelayOffset, CreateTopicInSendMessage, CreateTopicIfAbsent and
// FindOrCreateGroup build ops and pass them to Submit. This is the seam for
// replication (design.md §4):
//
//  1. Without a proposer (classic mode) Submit applies the op at once and,
//     for topic and group ops, rewrites that file before returning (as a
//     Java broker does; a write error is logged, the change stays in memory
//     and is retried by the next Persist).
//  2. With SetProposer(p), Submit hands the op to p, which is expected to
//     append MarshalOp(op) to the replicated log and return once the entry
//     is committed and applied here. Every replica's dispatcher decodes the
//     entry with UnmarshalOp and calls ApplyAt(index, op) in log order.
//
// Op semantics (Apply is deterministic; Op.Time, stamped by Submit on the
// proposer, becomes the DataVersion timestamp on every replica):
//
//	OpPutTopic            create or replace a topic
//	OpDeleteTopic         remove a topic (offsets stay: also submit OpRemoveOffsets)
//	OpPutGroup            create or replace a subscription group
//	OpDeleteGroup         remove a group and its forbidden-table entry
//	OpCommitOffsets       raise offsets of one group (several topics/queues per op)
//	OpResetOffsets        set offsets of one group, lower or higher
//	OpRemoveOffsets       drop offsets by topic, by group, or by (topic, group)
//	OpCommitDelayOffsets  raise delay-level progress (QueueOffset.QueueID = level)
//	OpResetDelayOffsets   set delay-level progress
//
// The OpKind values are stored in the log: append new kinds at the end,
// never renumber (TestOpKindValuesFrozen). UnmarshalOp returns ErrUnknownOp
// for a kind a newer binary wrote and ErrBadOp for damaged input; it never
// panics. Encoding (MarshalOp): format byte, kind byte, varint time,
// length-prefixed topic and group, length-prefixed JSON of the topic and
// group configs (empty when absent), then a count and (topic, queueId,
// offset) triples.
//
// Offsets never move backwards on commit: a commit below the stored offset
// of that queue is ignored. Only OpResetOffsets / OpResetDelayOffsets (an
// operator's reset, CloneOffsets) lower an offset. Replaying ops that are
// already reflected in the tables leaves them unchanged, so a replica may
// replay the log from any index at or below a snapshot's index.
//
// # Start-up
//
//	md, err := metadata.Open(metadata.Options{Dir: cfg.ConfigDir(), Logger: log})
//	md.InitSystemTopics(metadata.SystemTopicOptions{...from broker.conf...})
//	md.InitSystemGroups()
//	md.Start(time.Duration(cfg.FlushConsumerOffsetInterval) * time.Millisecond)
//	...
//	md.Stop() // stops the persister and writes what changed
//
// InitSystemTopics adds the topics a Java broker creates at start (TBW102
// with perm 7 when autoCreateTopicEnable, SELF_TEST_TOPIC, BenchmarkTest,
// the cluster-name and broker-name topics, OFFSET_MOVED_EVENT,
// SCHEDULE_TOPIC_XXXX with 18 queues, the trace topic when enabled,
// <cluster>_REPLY_TOPIC, RMQ_SYS_TRANS_HALF_TOPIC,
// RMQ_SYS_TRANS_OP_HALF_TOPIC) unless the file already has them; see
// SystemTopics. These are local changes on each replica, not ops.
//
// # Files
//
// The files have RocketMQ's exact shapes (fastjson field names, fields in
// fastjson's alphabetical order, tab-indented):
//
//	topics.json             {"dataVersion":{"counter":1,"stateVersion":0,"timestamp":...},
//	                         "topicConfigTable":{"TopicA":{"attributes":{},"order":false,"perm":6,
//	                          "readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"TopicA",
//	                          "topicSysFlag":0,"writeQueueNums":4}}}
//	subscriptionGroup.json  {"dataVersion":{...},"forbiddenTable":{},"subscriptionGroupTable":{"g":{...}}}
//	consumerOffset.json     {"dataVersion":{...},"offsetTable":{"TopicA@groupA":{0:12,1:5}}}
//	delayOffset.json        {"dataVersion":{...},"offsetTable":{1:0,2:15}}
//
// Integer map keys are written unquoted, as fastjson writes them (this is not
// standard JSON); both quoted and unquoted keys are read. Entries missing
// fields (files from older Java versions) get Java's defaults. Raw parts
// rmqd does not interpret (groupRetryPolicy bodies, subscriptionDataSet) are
// kept as they are. With a replicated log each file also records
// "rmqdAppliedIndex", a lower bound of the log index it covers (Java ignores
// unknown fields); Open reports the smallest as SnapshotIndex. The
// Encode(pretty) methods return the same JSON for the GET_ALL_* request bodies.
//
// Writing a file (Persist, PersistOffsets, the Start loop, Submit for
// topics and groups): the table is copied under its lock, then, outside the
// lock, written to <file>.tmp and fsynced; the current file is renamed to
// <file>.bak, <file>.tmp is renamed to <file> and the directory is fsynced.
// After a crash at any point either <file> or <file>.bak is a complete
// version. Only files whose table changed are rewritten.
//
// Loading (Open): a file that is missing, empty or unparsable is replaced by
// its .bak. A missing file with no .bak is an empty table (first start). A
// corrupt file with no usable .bak is an error: a broker must not start
// with silently emptied metadata. After loading the .bak because the main
// file was corrupt, the next write does not rotate the corrupt file into
// .bak.
//
// # Concurrency
//
// Each manager has its own RWMutex; no lock is held during file I/O (a
// per-file mutex only orders writers of the same file). Apply/ApplyAt may
// run concurrently with reads and with Persist. ApplyAt must be called
// from one goroutine in log order.
package metadata

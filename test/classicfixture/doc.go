// Package classicfixture writes a store directory exactly as a classic
// (master-slave) RocketMQ 4.x broker leaves it, so tests can start rmqd over
// a "Java" store and check that every old message, queue offset, msgId, key
// and consumer offset keeps its meaning (issue 6: in-place upgrade to
// DLedger mode; today: classic-mode compatibility).
//
// It follows the published byte layout (shared/docs/protocol.md §5.2-§5.7,
// §6) and deliberately does not import rmqd's store package: a layout bug in
// store/ must not be mirrored here. Everything is big-endian.
//
// # What Write produces
//
//	dir/
//	  commitlog/<20-digit start offset>   CommitLogFileSize bytes each (preallocated,
//	                                      zero tail); records never span files;
//	                                      a rolled file ends in a BLANK marker
//	                                      (int32 remaining, int32 0xCBD43194)
//	  consumequeue/<topic>/<qid>/<20-digit byte offset>
//	                                      20-byte units: phyOffset int64 | size int32 |
//	                                      tagsCode int64 (Java String.hashCode(TAGS))
//	  index/<yyyyMMddHHmmssSSS>           only with Spec.Index (keys topic#UNIQ_KEY,
//	                                      topic#word-of-KEYS)
//	  checkpoint                          4 KiB: physic, logics, index timestamps
//	  abort                               only with Spec.Abort (unclean stop)
//	  lock                                empty, as a stopped Java broker leaves it
//	  config/topics.json, subscriptionGroup.json, consumerOffset.json,
//	         delayOffset.json             fastjson pretty text, 4.x field sets,
//	                                      integer map keys unquoted
//
// # Record (protocol.md §5.2, v1 magic, IPv4 or IPv6 hosts)
//
//	 0 TOTALSIZE int32 | 4 MAGIC 0xDAA320A7 | 8 BODYCRC crc32(body)&0x7FFFFFFF |
//	12 QUEUEID int32 | 16 FLAG int32 | 20 QUEUEOFFSET int64 | 28 PHYSICALOFFSET int64 |
//	36 SYSFLAG int32 | 40 BORNTIMESTAMP int64 | 48 BORNHOST ip+port |
//	   STORETIMESTAMP int64 | STOREHOST ip+port | RECONSUMETIMES int32 |
//	   PREPAREDTXOFFSET int64 | BODYLEN int32 + BODY | TOPICLEN int8 + TOPIC |
//	   PROPLEN int16 + PROPERTIES (name 0x01 value 0x02, each pair ends in 0x02)
//
// Properties are written in name order (Java's HashMap order is unspecified).
// A message gets the properties a 4.x producer and broker give it: TAGS, KEYS
// (words joined by a blank), UNIQ_KEY (Java's 32-hex-char form unless
// Message.UniqKey says otherwise), WAIT=true, CLUSTER=<Spec.ClusterName>,
// plus Message.Properties.
//
// Manifest lists, per message, everything a test needs to find it again:
// queue offset, physical offset, offset msgId (store host + physical
// offset, §5.5), UNIQ_KEY, keys, tags and the record bytes themselves.
//
// # Shapes of old stores
//
//	Message.DelayLevel          parked in SCHEDULE_TOPIC_XXXX (REAL_TOPIC/REAL_QID/DELAY,
//	                            tagsCode = delivery time); Spec.DelayOffsets per level
//	Message.Bare                no UNIQ_KEY/WAIT/CLUSTER (Go batch items on 4.7/4.8)
//	Spec.ExpiredCommitLogFiles  retention removed the head (commitlog, consume-queue
//	                            and index files): non-zero min offsets
//	Spec.UndispatchedTail       crash with dispatch behind: tail without units/index
//	                            entries, checkpoint logics/index time older
//	Spec.TornTail               power loss: half of the last record on disk, its unit
//	                            and index entries written
//	Spec.Abort                  abort file (unclean stop)
//
// # Determinism
//
// With Spec.BaseTimestamp (or every message's timestamps) set, the same Spec
// writes byte-identical stores: give each replica of a group the same
// classic prefix, or change one message to make one diverge.
package classicfixture

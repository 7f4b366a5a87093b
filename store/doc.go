// Package store is rmqd's message store: RocketMQ's DefaultMessageStore with
// its on-disk format (protocol.md §5-§6), byte-compatible with RocketMQ 4.x.
//
// It holds the commitlog (every message, in arrival order), one consume queue
// per topic/queue (20-byte units pointing into the commitlog), key index
// files, and the checkpoint, abort and lock files. A dispatcher goroutine
// derives consume queues and the index from the commitlog; recovery rebuilds
// them after a crash. The full manual (layouts, caller duties) follows in
// this file as the implementation lands.
package store

// Package logstore is the durable log of one DLedger replica: a
// dledger.LogStorage whose files are byte-compatible with Java DLedger's
// DLedgerMmapFileStore (dledger.md §2), with checksums, strict recovery and
// group-committed fsync added. A store written by Java DLedger opens here,
// and Java can read ours (it ignores the checksum fields).
//
// # Directory
//
//	<storePathRootDir>/dledger-<selfId>/     the dir passed to Open
//	    currterm          term and vote (Java properties text)
//	    checkpoint        endIndex and committedIndex (Java properties text)
//	    data/00000000000000000000   data files, named by their start position
//	    data/00000000001073741824   (20 decimal digits), each exactly
//	    ...                         Config.DataFileSize bytes (1 GiB)
//	    index/00000000000000000000  index files, named by their start offset
//	    ...                         in index space, each IndexFileSize bytes
//
// Files are created at full size with Truncate (sparse on most filesystems;
// Java refuses files of another size). Data files are contiguous: file k+1
// starts where file k ends; positions form one byte space ("pos").
//
// # Data entry (all integers big-endian)
//
//	0        4        8                16               24               32
//	+--------+--------+----------------+----------------+----------------+
//	| magic  |  size  |     index      |      term      |      pos       |
//	+--------+--------+----------------+----------------+----------------+
//	32       36       40       44       48
//	+--------+--------+--------+--------+--------------------
//	|channel |chainCrc|bodyCrc |bodySize| body (bodySize bytes) ...
//	+--------+--------+--------+--------+--------------------
//
//	magic     1 normal, 2 no-op (a new leader's first entry); -1 = padding
//	size      48 + bodySize
//	index     log index, from 0
//	term      term of the leader that created the entry
//	pos       absolute position of this header (file start + offset)
//	channel   0 (reserved)
//	chainCrc  header checksum: CRC-32 (IEEE) of the other 44 header bytes
//	          (0-35, 40-47); 0 = not computed (Java). Not a chain, see below
//	bodyCrc   CRC-32 (IEEE) of the body; 0 = not computed (Java)
//	bodySize  body length
//
// End-of-file padding: an entry goes in the current file only if its size
// plus 8 bytes fit before the file's end; otherwise the 8-byte marker
//
//	+----------------+------------------------------+
//	| int32 -1       | int32 bytes left in the file |   (rest of the file zero)
//	+----------------+------------------------------+
//
// is written where the entry would have started, and the entry goes to the
// start of the next file. Entries never span files. FileLayout.Place is this
// rule as a pure function of the file size.
//
// # Index slot (32 bytes at index*32 of the index space; no padding)
//
//	0        4                12       16               24               32
//	+--------+----------------+--------+----------------+----------------+
//	| magic  |      pos       |  size  |     index      |      term      |
//	+--------+----------------+--------+----------------+----------------+
//
// # currterm and checkpoint
//
//	currterm:    currTerm=<term>\nvoteLeader=<peer id or empty>\n
//	checkpoint:  endIndex=<last index>\ncommittedIndex=<committed index>\n
//
// Same keys as Java (MemberState, DLedgerMmapFileStore). currterm is
// replaced atomically and durably (write currterm.tmp, fsync, rename, fsync
// the directory) before SetHardState returns; Java's non-durable
// tmp/bak/delete/rename leftovers (currterm.tmp, then currterm.bak) are read
// when currterm is missing. An unparsable currterm is corruption (guessing
// could let the replica vote twice in a term). The checkpoint is a restart
// hint: rewritten without fsync by Sync at most every CheckpointInterval;
// its committedIndex is capped at the recovered LastIndex. Close syncs the
// log and writes the checkpoint durably with one extra key Java ignores,
//
//	rmqdCleanEnd=<End()>
//
// which tells the next Open that the log was closed cleanly there: if the
// scan ends exactly at that position, the zero tail after it is not read
// again (on a crash that read can cover a whole data file). Open removes the
// key durably before returning, so it never outlives the clean state.
//
// # Checksums
//
// Append fills bodyCrc with the CRC-32 of the body, IEEE polynomial
// (java.util.zip.CRC32, as RocketMQ's message BODYCRC and dledger.EncodeEntry;
// hardware-accelerated on amd64/arm64; a body whose CRC is 0 is stored
// unchecked, as Java's are).
// Every non-zero bodyCrc is verified on recovery and on every read (Entries,
// Entry); AppendChecked verifies checksums a follower received from its
// leader before writing, and EncodeEntry/DecodeEntry give replication the
// on-disk form with the checksum for end-to-end checking.
//
// chainCrc holds a checksum of the rest of the header (index, term, pos,
// magic, sizes and bodyCrc), checked like bodyCrc whenever non-zero. Java
// DLedger neither computes nor reads the field. Without it a flipped bit
// that raised the last entry's term would pass every consistency check and
// make this replica's log look more up to date than it is in an election.
// It is deliberately not a chain over earlier entries: every replica writes
// identical bytes for an entry whatever its history (a follower that joined
// late has no predecessor to chain to), and old and new entries cannot be
// spliced by a crash because truncation is fsynced before new writes.
//
// # Writing and group commit
//
// Append encodes a batch into one buffer and issues one WriteAt per data
// file touched (usually one), then one WriteAt per index file for the slots,
// and only then publishes the new end to readers. It does not fsync, with
// two rare exceptions: a truncation (below), and rolling into a new data
// file, which first fsyncs the data and index written so far and the
// directories (once per DataFileSize bytes). The roll rule keeps the
// invariant recovery relies on: only the last data file can hold unsynced
// bytes, so a newer file is never durable next to a hole in an older one,
// and the index slots of every entry more than one roll old are durable
// (the slots of the batch that rolls are written after that fsync, so they
// wait for the next roll): those of files before the third-from-last, which
// recovery trusts without rescanning, always are.
//
// Sync fsyncs the data files written since the last Sync, in position
// order and stopping at the first error, then the data directory if it
// gained a file: one fsync per group commit. The driver calls Sync once for
// many Appends (group commit; SYNC_FLUSH acknowledges only after it), or
// runs SyncIndex on a flusher goroutine (see Concurrency). Sync does not
// fsync index files. An entry's slot is derived data: recovery rescans at
// least the last three data files, compares every slot there with its entry
// and rewrites from the first disagreement (Java DLedger does the same and
// flushes its index independently of its data), and the slots that can
// miss the disk after Sync all belong to the last two data files. So what
// Sync reports durable survives power loss: the entry bytes are on disk and
// Open rebuilds their slots (lost, stale, torn or in a missing or short
// index file) before anyone reads. Index files and the index directory are
// fsynced at a roll, a truncation, a reset, retention, the end of recovery
// and Close. Not also every CheckpointInterval: the recovery cost of
// unsynced slots is at most two files' worth of slot writes (the scan of
// three files happens anyway), and an extra fsync on a timer would land on
// some group commit's latency. All file syncs use fdatasync where the OS
// has it: files change size only when created (Truncate), and fdatasync
// flushes size and block allocation as fsync does, skipping timestamps.
//
// Data files are sparse, so a group commit's fdatasync into new bytes also
// allocates their blocks and, on ext4, commits the journal (~155 µs instead
// of ~90 µs on the VM we measure on). With Config.ZeroFillAhead a
// background goroutine keeps that many bytes after the end of the log
// written with zeros and on disk (through its own handle, up to the end of
// the current data file, chunk by chunk ahead of Append, which waits only
// if a batch reaches a chunk being written; see fill.go). The zeros
// read exactly like the holes they replace, so recovery needs nothing new:
// it stops at the first zero header whether the tail was filled or not.
//
// A write or fsync error is sticky (ErrFailed): after a failed fsync the
// kernel may have dropped dirty pages, so nothing later could honestly be
// called durable. Reopen the store to continue from what the disk holds.
//
// # Truncation, reset and retention
//
// Append with entries[0].Index <= LastIndex removes the conflicting suffix
// first: later files are deleted (durably), then the removed bytes and slots
// are zeroed and fsynced, all before the new entries are written, so no
// crash can join old and new entries into one log. (On a real disk a power
// cut during that one fsync could persist only part of the zeroing;
// recovery then sees old entries after a hole and reports corruption rather
// than guess.) entries[0].Index == FirstIndex, or an
// empty store given an entry that does not continue End, resets the store:
// every file is removed and the log restarts at the entry's pos (a follower
// joining a leader whose log begins later). DeleteBefore removes whole old
// data files (never the last) and the index files below the new FirstIndex;
// the caller picks the index (min of committed, applied and the slowest
// follower's match).
//
// # Recovery (Open)
//
//  1. Load data and index files; names must be 20 digits, multiples of the
//     file size, without gaps (a gap in the index drops and rebuilds it).
//     Short files (preallocation lost in a crash) are extended with zeros;
//     longer ones are refused as Java does.
//  2. Pick the scan start: the third-from-last data file whose first entry
//     is sane and agrees with its index slot (walking back), as Java does;
//     older files are trusted through their index slots after a spot check
//     (first entry and the entry before the scan start), else everything is
//     scanned. Reads still check every entry against its slot and checksum.
//  3. Scan entry by entry: magic 1 or 2, size == bodySize+48, pos equal to
//     the absolute position, entry+8 fits in the file, index = previous+1,
//     term >= previous term, bodyCrc when non-zero. Padding must state the
//     exact bytes left and moves to the next file. Slots are compared with
//     the data; from the first disagreement on they are rewritten (this is
//     what makes unsynced slots after Sync safe, see Writing and group
//     commit; a missing index file is created, slots past the end zeroed).
//  4. At the first entry that fails (or a zero header) decide: if a valid
//     entry with a checksum and a higher index lies anywhere after it, or a
//     file two or more files later starts with a sane entry, the log is
//     damaged below its tail: Open fails with an error wrapping
//     dledger.ErrCorrupt naming the file, offset and check that failed. The
//     replica must not vote or lead. Otherwise it is a torn tail: the bytes
//     after the last valid entry are zeroed, later files and index slots
//     removed, and all of it fsynced.
//  5. Load committedIndex from checkpoint. Progress is logged every
//     ProgressBytes scanned.
//
// A torn tail after power loss in async mode can, on real disks, lose an
// unsynced page while keeping a later one; recovery then reports corruption
// (as pebble's WAL does) rather than guess. Java-written entries (bodyCrc 0)
// are not considered when looking for valid entries after a failure, so
// damage in a Java-written tail truncates as Java would.
//
// # Concurrency
//
// Append, SetHardState, SetCommitted, DeleteBefore and Close belong to one
// goroutine (the driver). Sync and SyncIndex may also run on a separate
// flusher goroutine, concurrently with Append, so fsync can be pipelined
// with appends: SyncIndex returns the last index it made durable (everything
// appended before the call); calls are serialized, and truncation, reset,
// retention and Close wait for an fsync in flight. Readers (FirstIndex, LastIndex, LastTerm, End,
// Term, Entry, Entries, ReadAt, Committed) may be called from any goroutine:
// they copy bounds and file handles under a read lock and do their I/O
// without it. A read that races with a truncation or retention of the entries
// it reads returns ErrUnavailable or ErrCompacted, never bytes of the old
// entries. Terms of recovered and appended entries are kept in memory as
// runs (one per term change); older terms are read from index slots.
//
// Caller duties:
//  1. Call Sync before acknowledging anything as durable.
//  2. Persist term and vote with SetHardState before acting on them.
//  3. Set entry positions with Place from End (the leader) or take them from
//     the leader (followers); Append checks them.
//  4. Treat an error wrapping dledger.ErrCorrupt from Open as fatal for
//     voting and leading; treat ErrFailed from Append or Sync as a reason to
//     stop and reopen.
package logstore

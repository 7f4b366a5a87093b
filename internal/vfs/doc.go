// Package vfs is the one door to the disk for every package that stores data
// (dledger's log store, the classic commitlog, consume queues, index files,
// metadata snapshots). Tests swap the OS implementation for MemFS, which keeps
// track of which bytes were fsynced and can CrashClone itself: the clone holds
// only what a real disk would still hold after a power loss (page cache lost),
// so recovery code can be tested against torn and vanished tails. Injected
// errors come from ErrorFS.
//
// Caller duties:
//  1. Open files only through an FS; never call os directly in storage code.
//  2. Sync a file before relying on it surviving a crash, and SyncDir after
//     creating, renaming or removing a file in that directory.
package vfs

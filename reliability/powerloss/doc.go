// Package powerloss is a test helper: a file system, served over FUSE, that loses what was
// not synced when the test says the power went out. It lets txkv's reliability tests see
// what kill -9 cannot: a killed process leaves its writes in the page cache, where they
// survive; a power loss keeps only what fsync made durable. (Jepsen's LazyFS is the model:
// a FUSE layer that keeps unsynced writes apart and drops them at a crash.)
//
// # What it keeps, and what a crash loses
//
// The file system is in memory, one flat directory of regular files. For every file it
// keeps two layers of 4 KiB pages, and for the directory two sets of entries:
//
//	process ── write(2) ──▶ ┌──────────────────────────────┐
//	                        │ unsynced pages, unsynced size │   Crash(nil): dropped
//	          fsync(file) ──┼──────────────▼───────────────┤   Crash(keep): each page kept
//	                        │ synced pages, synced size     │   or dropped as keep says
//	                        └──────────────────────────────┘   (writeback in any order)
//
//	process ── creat(2), unlink(2), rename(2) ──▶ directory entries, unsynced
//	          fsync(directory) ──▶ synced entries: the only ones a crash keeps
//
// Invariants:
//
//   - A read sees the last write (unsynced pages over synced ones); the kernel's page cache
//     and memory maps see the same, since every write goes through the server (no
//     writeback cache, no passthrough).
//   - fsync or fdatasync of a file makes its content and size as they are now survive any
//     later crash; nothing else does. close(2) is no durability point.
//   - A new file's directory entry survives a crash only if the directory was fsynced after
//     the file was created, whatever was synced of its content (the strict POSIX reading;
//     ext4 in its default mode is kinder, which is why software that relies on it breaks
//     elsewhere). So a file created and filled but whose directory was never synced is gone
//     after Crash(nil).
//   - Crash with keep models writeback in any order: each unsynced page, size change and
//     directory change is independently kept or dropped. Pages are whole (no torn 4 KiB
//     page), and a page written twice since its last sync keeps its newest content only.
//
// # Using it
//
// The database must run in another process than the server. A bbolt file is memory-mapped:
// a page fault on the map waits for the FUSE server, and if the server is in the same
// process the Go runtime's stop-the-world (which waits for the faulting goroutine) deadlocks
// with it. So a test keeps the FS and its mount in the test process and runs the database in
// a re-executed child:
//
//	test process                                 child (the test binary, re-executed)
//	────────────                                 ─────────────────────────────────────
//	fsys := powerloss.New(); fsys.WriteFile(..)
//	m := fsys.Mount(dir)  ── FUSE ───────────▶   txkv.Open(dir/bank.db); transfers; ACK ...
//	kill -9 the child (or it dies at a crash point)
//	m.Unmount(); fsys.Crash(keep)                (the power goes out)
//	fsys.Export(name, real file) → verify there, without FUSE; mount again for the next cycle
//
// A watchdog that finds a child stuck calls Mount.Abort (the kernel's fusectl abort), which
// fails every request in flight, so the test fails instead of hanging: a process blocked in
// a FUSE request is not released by SIGKILL alone.
//
// Mounting needs root and /dev/fuse (Available says why not); it uses no fusermount. The
// mount reports SetFree's figure as its free space, so a database can be made to believe its
// disk is nearly full.
package powerloss

// Package wal is txkv's durable storage: one bbolt file holding the commit log (written by
// group commit), the checkpointed base state, and meta. The transaction engine (txn) appends
// one commit record per transaction, replays the log at Open, and periodically checkpoints
// the memtable into the base so the log can be truncated.
//
// # File layout
//
// One bbolt file, mode 0600, three top-level buckets:
//
//	bolt file
//	├── log    key: commit ts, 8 bytes big-endian     value: commit record (below)
//	│          ts 1041 → rec, ts 1042 → rec, ...       only records with ts > checkpoint ts matter
//	├── base   key: user key                           value: version (8 bytes BE) | CRC-32C
//	│          "apple" → 00..03F1 9A3C.. "red", ...     (4 bytes BE) | user value: the state as
//	│                                                  of the checkpoint ts (*)
//	└── meta   "format"     → 8 bytes BE (FormatVersion, 2)
//	           "checkpoint" → 8 bytes BE (checkpoint ts)
//	           "horizon"    → 8 bytes BE (highest ts deleted from log, see tail.go)
//	           "upgrade"    → a base key, only while a format-1 upgrade is unfinished
//	           "clean"      → present only between a clean Close and the next Open
//
// (*) Some keys may hold a newer version, still in the log, written by a checkpoint that did
// not finish: see "Checkpoint in chunks".
//
// A new file's directory is fsynced after Open creates it: a power loss may otherwise drop
// the directory entry and with it the whole file, synced data and all.
//
// # Checksummed base values (format 2)
//
// bbolt keeps no checksums, and the base is read back as data: a flipped byte in a base page
// would be returned by Get, and a flipped high byte of a version looked like a version from
// the future (mvcc's "snapshot too old", on every read of that key). So each base value
// carries a CRC-32C (Castagnoli, as the log records) of its key, version and value:
//
//	+----------------------+----------------------+-----------------------------+
//	| version, 8 bytes BE  | CRC-32C, 4 bytes BE  | value                       |
//	+----------------------+----------------------+-----------------------------+
//	CRC-32C over key | version | value: a value found under another key fails too
//
// Get, Scan and Verify check it and report a mismatch as a *CorruptError naming the key.
// A value whose CRC holds but whose version is newer than any commit the file holds — the
// checkpoint ts, or the newest log record's ts, read in the same transaction (a checkpoint
// in progress legitimately writes versions above the checkpoint ts, whose records are still
// in the log) — is corrupt too, so the engine never calls it "snapshot too old".
//
// Format 1 (before the CRC) is upgraded in place at Open, in chunks that each record how
// far they got in meta "upgrade" (upgrade.go): meta says format 2 from the first chunk on, so
// a format-1 build refuses a half-upgraded file. Other format versions are refused.
//
// Verify walks everything — meta values, every base entry, every log record, the retained
// tail included — and then runs bbolt's own structural check; it reports up to 100 damaged
// entries, each naming its bucket and key or ts.
//
// Log keys are timestamps in big-endian so bbolt's byte order is ts order: appends land on
// the rightmost leaf (the bucket's FillPercent is 1.0, so split pages are left full), replay
// is a cursor walk, and truncation deletes a prefix.
//
// A commit record:
//
//	+--------+-----------------+---------------------------------------------------------+
//	| format | CRC-32C of body |                          body                           |
//	| 1 byte | 4 bytes BE      | uvarint ts | uvarint txn id | uvarint n | op 1 ... op n |
//	+--------+-----------------+---------------------------------------------------------+
//	op = kind (0 put, 1 delete) | uvarint key len | key | uvarint value len | value
//
// The decoder trusts nothing: every length is checked against the bytes that remain before
// anything is allocated (an op takes at least 3 bytes, so a claimed op count above
// remaining/3 is rejected before the []Op is made), trailing bytes are an error, and a
// mismatch anywhere is a *CorruptError. Decoded keys and values alias the input.
//
// # Group commit
//
// Committers encode their record in their own goroutine and queue it; one writer goroutine
// turns the queue into batches, one bbolt read-write transaction (one fsync pair under
// SyncAlways: data pages, then the meta page) per batch:
//
//	committers            queue (mu)            writer goroutine                  bbolt
//	─────────            ──────────            ────────────────                  ─────
//	T1 encode ─┐
//	T2 encode ─┼──► [r1 r2 r3] ──swap──► batch [r1 r2 r3] ──► Begin; Put×3; Commit ─► fsync
//	T3 encode ─┘                             │                                        │
//	T4 encode ───► [r4 r5]   (forms while    │                                        │
//	T5 encode ───►            batch 1 syncs) ◄──────────── wake r1 r2 r3 ◄────────────┘
//	                          ──swap──► batch [r4 r5] ──► ...
//
// There is no timer. bbolt's DB.Batch waits up to MaxBatchDelay (10 ms) hoping more callers
// arrive; here the fsync of one batch is the waiting time of the next, so under load batches
// grow by themselves (with 64 committers, tens of records per fsync), and a lone committer
// pays one commit's latency and not a timer's. This is the shape of PostgreSQL's WAL flush
// (a backend that finds WALWriteLock taken waits, then finds its record already flushed by
// the holder) and of pebble's LogWriter, whose flush loop syncs whatever accumulated while
// the previous sync ran.
//
// One refinement, under SyncAlways only: committers in a closed loop (each waits for its
// commit, then starts the next transaction) split into two groups that alternate — those
// released by batch k run their next transaction while the others' batch k+1 is being
// synced, then queue behind it — so each waits out two fsync pairs per commit and a batch
// holds half of them. So when a batch ends the writer notes how many records it expects next
// (those queued plus those it released) and, before taking the next batch, yields while they
// come back: until all are queued, or none arrived for an eighth of the last batch's write
// time, or half of that time has passed — and never more than 2 ms, since a write that
// waited for a checkpoint or a stalled disk says nothing about how soon committers return.
// A lone committer is expected alone and never waits; one that does not come back costs at
// most one gap. Without fsync a batch's write is CPU work of its own and spinning would take
// the CPU the committers need, so the writer does not wait there. Stats.Gathers counts the
// batches held back, Stats.GatherWait their wait. Measured (bench/peers, bank of 10,000
// accounts, 16 goroutines, fsync): 9.7 → 15 records per batch.
//
//	batch k syncs ──► release A ──► [B queued]  A runs its next transaction ──► [B A] ──► batch k+1
//	                                 (without the wait: batch k+1 = [B], and A waits for k+2)
//
// Each waiter receives exactly one result on its own channel. Requests (encode buffer and
// channel) are pooled, so a steady-state Append does not allocate.
//
// # Enqueue, then wait: durability in enqueue order
//
// Append is Enqueue followed by Pending.Wait. txkv's commit protocol splits them: a committer
// enqueues its record, installs its versions and releases its locks, and only then waits
// (early lock release). What makes that safe is the order this package guarantees: a batch is
// everything queued since the previous batch was taken (while it was written, and during the
// gather after it), so records become durable in the order they were enqueued, and once a batch fails every later Append and Wait fails too. A
// transaction that saw another's writes enqueued its own record after it — same batch or a
// later one — so when its own Wait succeeds, everything it depends on is durable.
//
//	T1 Enqueue ─▶ [r1]       T1 installs, releases ─▶ T2 reads T1's write ─▶ T2 Enqueue ─▶ [r1 r2] or [r2]
//	batch [r1] durable ─▶ OnDurable([ts1]) ─▶ T1's Wait returns; batch [r2] durable ─▶ T2's Wait returns
//
// Options.OnDurable hands each durable batch's timestamps to the engine (its durable
// watermark, which readers wait on before they report a version); Options.OnFailed tells it
// once that the log failed.
//
// # Recovery
//
// A bbolt transaction is atomic: its meta page, written and synced last, either points at
// the batch's pages or at the previous tree. So after a crash the log holds whole batches
// only, and Open needs no repair: it checks the file (bbolt's meta pages, the buckets, the
// format version), then the engine calls Replay, which walks the log from checkpoint ts + 1
// in ts order, verifying each record's key, format byte, lengths and CRC. A mismatch is real
// corruption (bbolt never exposes a torn write) and is reported as a *CorruptError naming the
// record's ts. Replay copies records out in chunks, each in its own short read transaction,
// and calls back with no transaction open.
//
// Garbage, truncated or foreign files must yield ErrCorrupt, never a crash: Open reads
// bbolt's two meta pages itself (magic, version, FNV checksum, and the file is as long as
// the meta says) and the freelist page they name (a freelist page, its count within its
// pages, every id below the high-water mark: bbolt panics on a bad one inside its own Open,
// where the map and lock it leaks would make every later Open time out), and bbolt's panics
// and memory faults on damaged pages are recovered (runtime/debug.SetPanicOnFault) and
// reported as *CorruptError.
//
// Some damage bbolt cannot survive at all: a branch page pointing back up its own tree — a
// page number that, after a power loss under SyncNone, still holds an older page's content —
// sends bbolt's cursor down forever until the process runs out of memory, a fatal error no
// recover catches. So before bbolt's cursors run, Open walks the page trees itself, reading
// the file (walk.go): every page inside the file, reached once, a branch or a leaf, at most
// 64 levels deep. It walks the root bucket, meta and the log always; the base too, and the
// freelist against all of them (a page both free and in use would be overwritten by the first
// write), unless the last Close marked the file clean (meta "clean": written durably by a
// SyncAlways Close after everything else, removed durably by Open before anything else is
// written), since the base's walk costs a header read per page of the dataset — about 20 ms
// per 100 MB from the page cache, 90 ms from disk. Verify walks every tree first, always.
//
// # Checkpoint in chunks
//
// A checkpoint applies the entries to base, sets meta.checkpoint = ts and deletes the log
// records with ts <= ts. One bbolt transaction would make that trivially atomic, but a bbolt
// write transaction keeps in memory, until it commits, a node for every page it touched (an
// inode per element of the page), a copy of every key, every value, and a new page for every
// node it spills: a checkpoint of about 1,000,000 entries (9-byte keys, 16-byte values)
// held some 170 MB of heap in that one transaction (heap profile, issue 3). So the base is
// written in chunks, each its own transaction of at most Options.CheckpointChunk entries
// (about CheckpointChunkBytes bytes), and only the LAST transaction records the new
// checkpoint ts and truncates the log:
//
//	tx 1    base += chunk 1                          meta.checkpoint = P, log complete
//	tx 2    base += chunk 2                          meta.checkpoint = P, log complete
//	...          ◀── a crash, failure or Close anywhere up to here leaves exactly this
//	tx n    base += last chunk; meta.checkpoint = C; delete log <= C (but the retained
//	        tail) and raise the tail horizon         meta.checkpoint = C
//
// Invariants, at every commit boundary:
//
//  1. Every commit with ts > meta.checkpoint is in log (truncation is in the last
//     transaction, with the meta update that makes it safe).
//  2. For every key, base holds its newest version <= meta.checkpoint, or a newer version
//     v with meta.checkpoint < v <= C, where C is the ts of a checkpoint that was running:
//     a chunk that committed before the crash or failure. Such a v is a committed version,
//     and by 1 its record is in log.
//
// Why a base ahead of meta is safe:
//
//   - Idempotence. A base entry is (key → version, value), the newest version <= C of that
//     key: the same key always gets the same version and value for the same C, and a
//     later checkpoint writes a version at least as new. Writing a chunk twice (this
//     checkpoint failed, the next one rewrites it) changes nothing; a delete of a key already
//     deleted is a no-op.
//   - Recovery replays from the OLD checkpoint ts P. Every record with ts > P is still in
//     the log (invariant 1), so the memtable gets every version above P, including each v
//     that a chunk already put in base. A read looks in the memtable first and falls through
//     to base only for a key with no version in the memtable at or below its snapshot; after
//     a restart every snapshot is at or above the last replayed ts, so such a key has no
//     version above P either, and base holds its newest version <= P, unchanged.
//   - Without a crash, the same holds while chunks commit: C <= the GC watermark, so every
//     open or future snapshot is at or above every version a chunk writes, and reading a
//     chunk's v from base is reading the version the snapshot should see. The memtable still
//     holds every version until the engine calls Flushed, after Checkpoint returns.
//
// So a crash (kill -9 between chunks), a failed chunk commit (which poisons the log as a
// failed batch does), an invalid entry (which does not) or Close (checked before each chunk)
// all leave meta at P and a complete log, and the next checkpoint simply writes again.
// Options.BeforeCheckpointCommit runs before every chunk's commit and the
// wal.checkpoint.mid crash point is hit in every chunk's transaction after its base writes,
// so tests can fail or kill a checkpoint between chunks.
//
// The last transaction still deletes the whole log prefix at once; its memory is bounded by
// CheckpointBytes (the log size that triggers a checkpoint), not by the dataset: deleting
// 600,000 small records (56 MiB of log) peaked at about 30 MiB of live heap.
//
// # A checkpoint in steps: recovering from a full disk
//
// The chunked checkpoint writes the whole base before its last transaction frees the log, so
// the file must hold both: with a log of new keys it needs about the log's size again in free
// space (plus the pages each chunk copies). A database whose disk filled up cannot shrink its
// log once a little space is freed. So Checkpoint first compares the free space — statfs of
// the file's directory plus bbolt's free pages inside the file — with what the chunked
// scheme may need (twice the log after the checkpoint, two chunks and 1 MiB). Below that, it
// moves the checkpoint forward in steps, oldest records first, reading them back from the
// log (steps.go):
//
//	log:   P | r r r | r r r | r r r ... C          P: checkpoint ts before, C: the target
//	           step 1  step 2  ...
//	step i (one bbolt transaction):
//	  read the records in (c(i-1), c(i)]; base += the newest write of each key among them
//	  meta.checkpoint = c(i); delete the log records <= c(i)   ◀── what it made redundant
//
// Each step is a whole checkpoint at c(i): the base holds the newest version <= c(i) of every
// key, the log every commit above c(i). The invariants above hold with meta at c(i) at every
// commit, so a crash between steps recovers from the last step, and nothing depends on the
// steps after it. The pages a step frees — the records it deleted, the base pages it copied —
// serve the next step (bbolt reuses a committed transaction's freed pages once no reader
// predates it), so the file grows by about one step instead of by the whole log. A step
// takes at most about a quarter of the free space (limitsFor: keys x 2 pages, record bytes)
// and at least one record; its base pages split full (FillPercent 1), not half full. Two
// things give way to space: the engine's entries are not used (the log holds the same
// versions; a hot key is written once per step), and the retained tail is not kept — it
// would need its own copy in the base — so Watch consumers behind the checkpoint get
// ErrCompacted, as after PostgreSQL's max_slot_wal_keep_size.
//
// How much space recovery needs: one step — about eight pages (32 KiB: the base leaf and
// branch copied, the log's first leaf and branch, the freelist) plus twice the largest
// commit record. Measured (reliability/crash TestFullDiskRecovery): a database filled with
// new keys to ENOSPC on a 4 MiB tmpfs (a 3 MiB log) reopens, checkpoints and writes again
// after 1% of its log size is given back (31 KB), not after 0.5% (15 KB); the goal is 10%.
//
// Readers never hold a bbolt read transaction across user code (Get and Scan copy out what
// they return): bbolt's writer must wait for all read transactions when it remaps the file,
// so a long reader would stall group commit. The initial memory map is large (256 MiB of
// address space by default) so that remaps are rare anyway.
//
// # Why one failure poisons the log (fsyncgate)
//
// In 2018 PostgreSQL learned that when fsync fails, Linux may mark the dirty pages clean
// and drop the error: a retry "succeeds" while the data is gone. A bbolt commit failure
// means the same uncertainty. So the first failed batch (or checkpoint commit) poisons the
// log: every waiter of that batch, everything queued behind it and every later Append gets
// ErrLogFailed wrapping the cause. Nothing acknowledged is lost, since acknowledgement
// happens only after a successful commit; reads of the base keep working. Recovery is to
// restart, replaying what is really on disk. Options.BeforeCommit injects such a failure.
// A full disk is such a failure too (ENOSPC from a write or from fsync); the engine's
// Checkpoint and Close return it, and after space is freed a restart recovers with little
// room (see "A checkpoint in steps").
//
// # bbolt options chosen
//
// The hashmap freelist (O(1) page allocation in a file with churn: the log is a queue),
// InitialMmapSize 256 MiB (fewer remaps), Timeout 1s on the file lock (a second Open of a busy
// file fails instead of hanging). SyncNone sets bbolt's NoSync and NoGrowSync. NoFreelistSync
// (etcd's choice) is available but off: with it bbolt rebuilds the freelist at Open in a
// goroutine of its own, where a damaged page panics beyond recovery, and "a corrupt file
// yields ErrCorrupt, never a crash" matters more here than one page write per batch.
//
// # References
//
//   - PostgreSQL, src/backend/access/transam/xlog.c (XLogFlush, group flush under
//     WALWriteLock) and the fsyncgate thread (pgsql-hackers, March 2018); "PostgreSQL's fsync()
//     surprise", LWN 2018.
//   - Pebble, commit.go (the commit pipeline) and record/log_writer.go (LogWriter's flush
//     loop: sync what accumulated during the previous sync).
//   - bbolt, db.go (DB.Batch and MaxBatchDelay, the timer we avoid; Options) and tx.go (the
//     two-phase write: pages, fdatasync, meta page, fdatasync); node.go (a write
//     transaction materializes every touched page as a node until commit).
//   - ARIES (Mohan et al., TODS 1992) and PostgreSQL's checkpoints: the redo start point
//     (here meta.checkpoint) moves only after everything before it is durable, so pages
//     written ahead of it are merely redone — the argument for writing the base in chunks.
//   - Gray & Reuter, Transaction Processing, §9 (group commit).
package wal

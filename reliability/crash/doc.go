// Package crash holds txkv's crash and corruption reliability tests (issue 6): it has no
// code of its own, only tests, which run the public API in child processes and kill them.
//
// # What is promised, and how it is checked
//
//	promise                                   test (this directory)           knob
//	────────────────────────────────────────  ──────────────────────────────  ─────────────────────
//	nothing acknowledged is lost by kill -9   TestKill9Cycles                 TXKV_KILL_CYCLES (200)
//	no torn transaction, money conserved        (every strategy at once,
//	bbolt's own check clean, recovery < 1 s      SyncAlways and SyncNone)
//	the same at 9 named crash points, and     TestCrashPoints                 TXKV_CRASH_REPEATS (25)
//	  recovering twice = the same state hash
//	a damaged log record is ErrCorrupt        TestLogRecordFlips              TXKV_FLIPS (200)
//	  naming it; no read returns wrong data
//	a failed log commit fails every waiting   TestLogFailureEveryCommitter
//	  committer; reads work, writes refused
//
// Every randomized test logs its seed; TXKV_SEED=<seed> replays it.
//
// # The kill loop
//
// The test binary re-executes itself as the child (TestMain dispatches on TXKV_CRASH_CHILD):
//
//	parent (go test)                          child (same binary)
//	────────────────                          ───────────────────
//	seed the bank file
//	start child ──────────────────────────▶   Open; 4 workers (Pessimistic, Optimistic,
//	read "ACK <id>" and "SAW <id>" ◀ stdout ─   Hybrid, Adaptive) run transfers; each prints
//	  after k ACKs: SIGKILL ─────────────▶ ✗   ACK only after Update returned nil; readers
//	  (or the child kills itself at a         print SAW for every transfer a View, a DB.Get
//	   crash point: TXKV_CRASHPOINT)          or a Watch reported; Close; Open again; …
//	Open (recovery, timed) → check invariants → hash → Close → bbolt tx.Check()
//	Open again → hash again → equal?
//	next cycle on the same file
//
// A transfer writes both balances and a record xfer/<id> = "from to amount" in one
// transaction, so after any crash: every ACKed id has its record (durability), each balance
// equals its start plus the recorded transfers (atomicity: a transfer is all there or not at
// all), and the total is conserved. A commit is visible before it is durable (its locks are
// released before the fsync), so the readers' SAW lines are promises too: every transfer an
// acknowledged read reported must be on file after the crash. (Removing the readers' wait
// for durability, or letting Watch deliver visible commits, fails this within a few cycles.)
//
// # Crash points
//
// internal/crashpoint names the moments a crash hurts most — before the log append, inside
// the batch's bbolt transaction before commit, after the commit before anyone is told,
// between the enqueue and the install, in the middle of the install, after the install and
// the lock release but before the record is durable, inside a checkpoint's
// transaction, during log truncation, during replay at Open, and in Close after the final
// checkpoint. A child started with TXKV_CRASHPOINT=<name> and a random TXKV_CRASHPOINT_SKIP
// SIGKILLs itself at that hit, so each point is crashed at many different moments.
//
// # What is not tested here
//
// A SIGKILL loses the process, not the page cache: these tests cannot tell SyncAlways from
// SyncNone, and do not check fsync ordering. Power loss below the file system needs root and
// dm-flakey (or a VM snapshot) and is out of scope.
//
// References: Jepsen's bank test; Badger's bank test (badger/test/bank); SQLite, "How SQLite
// Is Tested" §3 (crash tests) and §4 (I/O error tests); PostgreSQL's fsyncgate (2018).
package crash

// Package crashpoint kills the process at named points of the engine, so
// that tests can crash txkv exactly where a power cut or kill -9 hurts most:
// between the log append and the bbolt commit, half way through a
// checkpoint, in the middle of recovery, and so on. It is SQLite's
// crash-test VFS and FoundationDB's "buggify" reduced to the one fault that
// matters for durability: the process stops, now, with nothing flushed that
// was not flushed already.
//
// # How it works
//
// The engine calls Hit("wal.batch.before-commit") (one line) at each named
// point. At init the package reads two environment variables once:
//
//	TXKV_CRASHPOINT=<name>       the point that kills (unset: none; the default)
//	TXKV_CRASHPOINT_SKIP=<n>     let the first n hits of it pass (default 0)
//
// When the named point is hit for the (n+1)th time, Hit writes one line
// "txkv crashpoint: <name> hit <k>" to stderr (so the parent test knows the
// death was the point, not something else) and sends SIGKILL to its own
// process: no deferred function runs, no buffer is flushed, bbolt's file
// lock dies with the process, exactly as with kill -9 from outside.
//
//	engine goroutine ──Hit(name)──▶ armed? ──no──▶ return      (one atomic load)
//	                                   │yes
//	                                   ▼
//	                          name == TXKV_CRASHPOINT? ──no──▶ return
//	                                   │yes
//	                                   ▼
//	                          hits++ > TXKV_CRASHPOINT_SKIP? ──no──▶ return
//	                                   │yes
//	                                   ▼
//	                          stderr line, kill(getpid(), SIGKILL)
//
// # Invariants
//
//   - Disabled (the environment variable unset, as in production), Hit costs
//     one atomic load and a branch: the comparison and the counter live in a
//     function that is not inlined and never called.
//   - The environment is read once, at package init, so a process decides at
//     start whether it can crash; a test arms a child process, never itself.
//   - A hit that kills never returns: nothing after the point runs.
//
// The point names are constants here so the engine and the tests agree on
// them; All lists them. The tests that drive them are in
// reliability/crash.
//
// References: SQLite, "How SQLite Is Tested", §3.3 crash testing;
// FoundationDB's simulation and BUGGIFY; the etcd gofail failpoints.
package crashpoint

// Package soak holds txkv's soak test: a long mixed run of transactions
// that commit, abort, deadlock, time out waiting for locks and fail NOWAIT
// requests; the package itself is empty, the test is in package soak_test.
//
// # What must hold afterwards
//
//	lock table      db.Locks() is empty: every path that ends a transaction
//	                (commit, rollback, error, deadlock victim, timeout) released
//	                every lock it held and withdrew every request it queued
//	wait-for graph  db.WriteWaitForGraph has no edges: no waiter was forgotten
//	goroutines      goleak finds none left after Close
//	heap            after runtime.GC, within 10% of what it was after the
//	                warm-up phase: nothing grows with the number of transactions
//
// The heap baseline is taken after a warm-up phase, not from zero, because
// a fresh database grows to a steady state (the memtable's live versions,
// the Watch ring, lock-table shards, sync.Pools) that is not a leak.
//
// Each kind of failure is produced deterministically by a pair of
// goroutines meeting at a channel rendezvous, never by sleeping:
//
//	deadlock   A locks a, B locks b, both signal; A asks for b, B for a:
//	           exactly one is the victim (ErrDeadlock), the other commits
//	timeout    A holds k and signals; B asks for k with WaitTimeout(1ms)
//	NOWAIT     A holds k and signals; B asks for k with NoWait()
//
// Commits and aborts come from a pool of workers running read-modify-write
// transactions over a shared key range under all four strategies.
package soak

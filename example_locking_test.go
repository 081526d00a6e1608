package txkv_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/txkv/txkv"
)

// GetForUpdate with NoWait is SELECT … FOR UPDATE NOWAIT: when another
// transaction holds the row, fail at once instead of queueing. The refused
// transaction stays usable — it can try another row, or roll back.
func ExampleTx_GetForUpdate() {
	db, err := txkv.Open("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	_ = db.Put(ctx, []byte("seat/12A"), []byte("free"))
	_ = db.Put(ctx, []byte("seat/12B"), []byte("free"))

	alice, _ := db.Begin(ctx, &txkv.TxOptions{Label: "alice"})
	defer alice.Rollback()
	v, err := alice.GetForUpdate([]byte("seat/12A"))
	fmt.Println("alice holds 12A:", string(v), err)

	bob, _ := db.Begin(ctx, &txkv.TxOptions{Label: "bob"})
	defer bob.Rollback()
	_, err = bob.GetForUpdate([]byte("seat/12A"), txkv.NoWait())
	fmt.Println("bob wants 12A:", err, errors.Is(err, txkv.ErrLockNotAvailable))
	var lerr *txkv.LockError
	if errors.As(err, &lerr) {
		fmt.Println("in his way:", lerr.Holders, lerr.Labels[lerr.Holders[0]])
	}

	// Bob's transaction is still usable: he takes the next seat instead.
	v, err = bob.GetForUpdate([]byte("seat/12B"), txkv.NoWait())
	fmt.Println("bob holds 12B:", string(v), err)
	_ = bob.Put([]byte("seat/12B"), []byte("bob"))
	fmt.Println("bob commits:", bob.Commit())

	_ = alice.Put([]byte("seat/12A"), []byte("alice"))
	fmt.Println("alice commits:", alice.Commit())
	// Output:
	// alice holds 12A: free <nil>
	// bob wants 12A: txkv: lock not available: txn 4 ("bob") wants exclusive on "seat/12A", held by txn 3 ("alice") true
	// in his way: [3] alice
	// bob holds 12B: free <nil>
	// bob commits: <nil>
	// alice commits: <nil>
}

// A job queue with SKIP LOCKED: each worker claims the first job nobody else
// holds, and never waits for a job another worker is processing. The claim
// is the row lock; deleting the job at commit finishes it.
func ExampleSkipLocked() {
	db, err := txkv.Open("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	for _, job := range []string{"job/001", "job/002", "job/003"} {
		_ = db.Put(ctx, []byte(job), []byte("resize "+job[4:]+".png"))
	}

	// claim locks the oldest free job of the queue [job/, job0).
	claim := func(worker *txkv.Tx) []byte {
		jobs, err := worker.ScanForUpdate([]byte("job/"), []byte("job0"), 1, txkv.SkipLocked())
		if err != nil || len(jobs) == 0 {
			return nil
		}
		return jobs[0].Key
	}

	w1, _ := db.Begin(ctx, &txkv.TxOptions{Label: "worker-1"})
	w2, _ := db.Begin(ctx, &txkv.TxOptions{Label: "worker-2"})
	j1, j2 := claim(w1), claim(w2) // w2 skips the job w1 holds
	fmt.Printf("worker-1 claims %s, worker-2 claims %s\n", j1, j2)

	// Each worker does its job, then deletes it and commits.
	_ = w1.Delete(j1)
	_ = w2.Delete(j2)
	fmt.Println(w1.Commit(), w2.Commit())

	w3, _ := db.Begin(ctx, nil)
	defer w3.Rollback()
	fmt.Printf("next claim: %s\n", claim(w3))
	fmt.Println("refused (skipped) lock requests:", db.Stats().NotAvailable)
	// Output:
	// worker-1 claims job/001, worker-2 claims job/002
	// <nil> <nil>
	// next claim: job/003
	// refused (skipped) lock requests: 1
}

// Date-range booking with LockRange: one night is one key
// ("room/101/2026-12-01"), and a booking locks the half-open range of its
// nights [check-in, check-out) exclusively, so a concurrent booking can
// neither lock an overlapping range nor write a night inside it. The lock
// covers nights nobody has booked yet — there is no row to lock FOR UPDATE.
func ExampleTx_LockRange() {
	db, err := txkv.Open("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	night := func(day int) []byte { return fmt.Appendf(nil, "room/101/2026-12-%02d", day) }

	// book reserves the nights [in, out) for guest, or says why it cannot.
	book := func(tx *txkv.Tx, guest string, in, out int) error {
		if err := tx.LockRange(night(in), night(out), txkv.Exclusive, txkv.NoWait()); err != nil {
			return err
		}
		var taken []string
		err := tx.Scan(night(in), night(out), func(k, v []byte) error {
			taken = append(taken, fmt.Sprintf("%s (%s)", k[len("room/101/"):], v))
			return nil
		})
		if err != nil {
			return err
		}
		if len(taken) > 0 {
			return fmt.Errorf("already booked: %s", strings.Join(taken, ", "))
		}
		for d := in; d < out; d++ {
			if err := tx.Put(night(d), []byte(guest)); err != nil {
				return err
			}
		}
		return nil
	}

	pess := &txkv.TxOptions{Strategy: txkv.Pessimistic}
	ann, _ := db.Begin(ctx, pess)
	fmt.Println("ann, Dec 1-4:", book(ann, "ann", 1, 4))

	ben, _ := db.Begin(ctx, pess)
	err = book(ben, "ben", 3, 5) // overlaps Dec 3 while ann holds her range
	fmt.Println("ben, Dec 3-5:", err, errors.Is(err, txkv.ErrLockNotAvailable))
	fmt.Println("ben, Dec 4-6:", book(ben, "ben", 4, 6)) // check-out day 4 is free
	fmt.Println(ann.Commit(), ben.Commit())

	cy, _ := db.Begin(ctx, pess)
	fmt.Println("cy, Dec 2-3:", book(cy, "cy", 2, 3))
	_ = cy.Rollback()
	// Output:
	// ann, Dec 1-4: <nil>
	// ben, Dec 3-5: txkv: lock not available: txn 2 wants exclusive on ["room/101/2026-12-03","room/101/2026-12-05"), held by txn 1 true
	// ben, Dec 4-6: <nil>
	// <nil> <nil>
	// cy, Dec 2-3: already booked: 2026-12-02 (ann)
}

// PutIfVersion across a user's think time: no lock is held while the user
// edits. The save checks the version read at load time; on
// ErrVersionMismatch the application reloads, merges (here: re-applies the
// user's change to the new text) and tries again.
func ExampleTx_PutIfVersion_retry() {
	db, err := txkv.Open("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	key := []byte("wiki/go")
	_ = db.Put(ctx, key, []byte("Go is a language."))

	load := func() (text string, version uint64) {
		_ = db.View(ctx, func(tx *txkv.Tx) error {
			v, ver, err := tx.GetVersioned(key)
			text, version = string(v), ver
			return err
		})
		return text, version
	}
	save := func(text string, version uint64) error {
		return db.Update(ctx, nil, func(tx *txkv.Tx) error {
			return tx.PutIfVersion(key, []byte(text), version)
		})
	}
	edit := func(text string) string { return text + " It has goroutines." }

	text, version := load()                                    // Alice opens the page ...
	_ = db.Put(ctx, key, []byte("Go is a compiled language.")) // ... Bob saves first ...

	for attempt := 1; attempt <= 5; attempt++ { // ... Alice saves.
		err := save(edit(text), version)
		var vm *txkv.VersionMismatchError
		if errors.As(err, &vm) {
			fmt.Printf("attempt %d: version mismatch (the page changed while Alice edited)\n", attempt)
			text, version = load() // reload and re-apply the edit
			continue
		}
		fmt.Printf("attempt %d: %v\n", attempt, err)
		break
	}
	final, _ := db.Get(ctx, key)
	fmt.Println(string(final))
	// Output:
	// attempt 1: version mismatch (the page changed while Alice edited)
	// attempt 2: <nil>
	// Go is a compiled language. It has goroutines.
}

// Reading a *DeadlockError: two transfers lock the same two accounts in
// opposite orders. The request that closes the cycle finds it at once
// (DeadlockImmediate); the youngest transaction of the cycle is the victim,
// is rolled back, and its error lists the cycle. db.LastDeadlock keeps the
// report, like InnoDB's LATEST DETECTED DEADLOCK.
func ExampleDeadlockError() {
	db, err := txkv.Open("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	_ = db.Put(ctx, []byte("acct/a"), []byte("100"))
	_ = db.Put(ctx, []byte("acct/b"), []byte("100"))

	t1, _ := db.Begin(ctx, &txkv.TxOptions{Strategy: txkv.Pessimistic, Label: "a-to-b"})
	t2, _ := db.Begin(ctx, &txkv.TxOptions{Strategy: txkv.Pessimistic, Label: "b-to-a"})
	_, _ = t1.GetForUpdate([]byte("acct/a"))
	_, _ = t2.GetForUpdate([]byte("acct/b"))

	done := make(chan error, 1)
	go func() { // t1 waits for t2's account ...
		_, err := t1.GetForUpdate([]byte("acct/b"))
		done <- err
	}()
	if err := awaitWaiting(db, t1.ID()); err != nil {
		fmt.Println(err)
		return
	}
	_, err = t2.GetForUpdate([]byte("acct/a")) // ... and t2 for t1's: a cycle

	var de *txkv.DeadlockError
	if errors.As(err, &de) {
		fmt.Println("victim:", de.Labels[de.Victim], "- the youngest:", de.Victim == t2.ID())
		fmt.Println("cycle length:", len(de.Cycle))
		for _, e := range de.Cycle {
			fmt.Printf("  %s waits for %s on %s (%s)\n", de.Labels[e.Waiter], de.Labels[e.Holder], e.Key, e.Mode)
		}
	}
	fmt.Println("retryable:", txkv.IsRetryable(err))
	fmt.Println("t1 gets acct/b:", <-done) // the victim's rollback released acct/b
	fmt.Println("t1 commits:", t1.Commit())
	fmt.Println("t2 was rolled back:", errors.Is(t2.Rollback(), txkv.ErrTxDone))
	last := db.LastDeadlock()
	fmt.Println("LastDeadlock victim:", last.Labels[last.Victim], "Stats.Deadlocks:", db.Stats().Deadlocks)
	// Output:
	// victim: b-to-a - the youngest: true
	// cycle length: 2
	//   b-to-a waits for a-to-b on acct/a (exclusive)
	//   a-to-b waits for b-to-a on acct/b (exclusive)
	// retryable: true
	// t1 gets acct/b: <nil>
	// t1 commits: <nil>
	// t2 was rolled back: true
	// LastDeadlock victim: b-to-a Stats.Deadlocks: 1
}

// db.Locks is PostgreSQL's pg_locks: every holder and waiter right now,
// sorted by key, holders before waiters, waiters in queue order. Labels
// (TxOptions.Label) say who is who.
func ExampleDB_Locks() {
	db, err := txkv.Open("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	_ = db.Put(ctx, []byte("price/tea"), []byte("3.50"))

	reader1, _ := db.Begin(ctx, &txkv.TxOptions{Label: "report-1"})
	reader2, _ := db.Begin(ctx, &txkv.TxOptions{Label: "report-2"})
	writer, _ := db.Begin(ctx, &txkv.TxOptions{Label: "price-update"})
	defer reader2.Rollback()
	defer writer.Rollback()
	_, _ = reader1.GetForShare([]byte("price/tea"))
	_, _ = reader2.GetForShare([]byte("price/tea"))

	done := make(chan string, 1)
	go func() {
		v, err := writer.GetForUpdate([]byte("price/tea"))
		done <- fmt.Sprint(string(v), " ", err)
	}()
	if err := awaitWaiting(db, writer.ID()); err != nil {
		fmt.Println(err)
		return
	}
	printLocks := func() {
		for _, l := range db.Locks() {
			state := "waiting"
			if l.Granted {
				state = "granted"
			}
			fmt.Printf("  %-12s %-9s %-9s %s\n", l.Label, l.Key, l.Mode, state)
		}
	}
	fmt.Println("writer queued behind two readers:")
	printLocks()

	_ = reader1.Rollback()
	_ = reader2.Rollback()
	fmt.Println("after the readers end, the writer reads:", <-done)
	printLocks()
	// Output:
	// writer queued behind two readers:
	//   report-1     price/tea shared    granted
	//   report-2     price/tea shared    granted
	//   price-update price/tea exclusive waiting
	// after the readers end, the writer reads: 3.50 <nil>
	//   price-update price/tea exclusive granted
}

// Advise applies the decision guide's flowchart to a described workload and
// names the rule that decided.
func ExampleAdvise() {
	bank := txkv.Advise(txkv.Workload{
		Critical: true, ConflictRate: 0.10, ReadWriteRatio: 1,
		TxDuration: 5 * time.Millisecond, UsersCanWait: true,
	})
	fmt.Println(bank.Strategy)
	fmt.Println(bank.Reasons[0])

	likes := txkv.Advise(txkv.Workload{
		ConflictRate: 0.01, ReadWriteRatio: 100,
		TxDuration: time.Millisecond, UsersCanWait: true,
	})
	fmt.Println(likes.Strategy)
	fmt.Println(likes.Reasons[0])

	tickets := txkv.Advise(txkv.Workload{
		ConflictRate: 0.12, ReadWriteRatio: 3,
		TxDuration: 20 * time.Millisecond, UsersCanWait: true,
	})
	fmt.Println(tickets.Strategy)
	fmt.Println(tickets.Reasons[0])
	// Output:
	// pessimistic
	// rule critical-writes: critical data with 1 reads per write: correctness first, lock what you change
	// optimistic
	// rule read-heavy: 100 reads per write and conflict rate 1.0%: validation is cheap, locks would only cost
	// hybrid
	// rule moderate-conflict: conflict rate 12% in 5–20%: optimistic first, pessimistic on retry
}

// LockKeys prevents deadlocks by lock ordering: whatever order the keys are
// named in, they are locked in one canonical (byte) order. Two opposite
// transfers then queue on the same first key instead of each holding one
// account the other needs.
func ExampleTx_LockKeys() {
	db, err := txkv.Open("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	pess := func(label string) *txkv.TxOptions {
		return &txkv.TxOptions{Strategy: txkv.Pessimistic, Label: label}
	}

	t1, _ := db.Begin(ctx, pess("bob-to-alice"))
	fmt.Println(t1.LockKeys(txkv.Exclusive, []byte("acct/bob"), []byte("acct/alice")))

	t2, _ := db.Begin(ctx, pess("alice-to-bob"))
	done := make(chan error, 1)
	go func() { done <- t2.LockKeys(txkv.Exclusive, []byte("acct/alice"), []byte("acct/bob")) }()
	if err := awaitWaiting(db, t2.ID()); err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range db.Locks() {
		fmt.Println(" ", l.Label, string(l.Key), l.Granted)
	}

	_ = t1.Put([]byte("acct/bob"), []byte("90"))
	_ = t1.Put([]byte("acct/alice"), []byte("110"))
	fmt.Println(t1.Commit(), <-done, t2.Rollback())
	fmt.Println("deadlocks:", db.Stats().Deadlocks)
	// Output:
	// <nil>
	//   bob-to-alice acct/alice true
	//   alice-to-bob acct/alice false
	//   bob-to-alice acct/bob true
	// <nil> <nil> <nil>
	// deadlocks: 0
}

// awaitWaiting polls db.Locks until transaction id is queued for a lock: an
// introspection query, not a sleep, tells the example that the other
// goroutine is blocked.
func awaitWaiting(db *txkv.DB, id uint64) error {
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(100 * time.Microsecond)
	defer tick.Stop()
	for {
		for _, l := range db.Locks() {
			if l.TxID == id && !l.Granted {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("transaction %d never waited", id)
		}
		<-tick.C
	}
}

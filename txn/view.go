package txn

import "context"

// View runs fn in a read-only transaction at the read watermark. fn must
// not keep tx once it returns: View recycles it.
func (db *DB) View(ctx context.Context, fn func(tx *Tx) error) error {
	if fn == nil {
		return errNilFn
	}
	tx, err := db.begin(ctx, &TxOptions{ReadOnly: true}, true, nil)
	if err != nil {
		return err
	}
	if err = runManaged(tx, fn); err != nil {
		err = tx.rollbackSettled(err)
	} else {
		err = tx.commit() // read-only: releases the snapshot, counts as a commit
	}
	db.recycle(tx)
	return err
}

// A View's or Update's transaction is recycled when its attempt ends: a
// point read in a read-only transaction then allocates next to nothing, an
// Update attempt one Tx less, and the garbage collector (whose every cycle
// marks the whole memtable) runs less often. Only a managed transaction
// qualifies: nobody but View or Update holds it once fn has returned —
// unless fn kept it, which the root package's handles detect by ID (a
// recycled Tx gets a new one); code of this package that keeps one is
// documented not to (DB.View, DB.Update). A transaction an AfterFunc or
// Close may still touch is not recycled (endLocked decides), nor is one
// whose fn panicked.

// allocTx returns a Tx to initialize: a recycled one if pooled and one is
// available.
func (db *DB) allocTx(pooled bool) *Tx {
	if pooled {
		if tx, ok := db.txPool.Get().(*Tx); ok {
			return tx
		}
	}
	return new(Tx)
}

// recycle returns a finished View or Update transaction to the pool if nothing else
// can reach it.
func (db *DB) recycle(tx *Tx) {
	if tx.recyclable {
		db.txPool.Put(tx)
	}
}

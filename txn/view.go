package txn

import "context"

// View runs fn in a read-only transaction at the read watermark.
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

// A View's transaction is recycled when View returns: a point read in a
// read-only transaction then allocates next to nothing, and the garbage
// collector (whose every cycle marks the whole memtable) runs far less
// often. Only a managed read-only transaction qualifies: nobody but View
// holds it once fn has returned — unless fn kept it, which the root
// package's handles detect by ID (a recycled Tx gets a new one). A
// transaction an AfterFunc or Close may still touch is not recycled
// (finishLocked decides), nor is one whose fn panicked.

// allocTx returns a Tx to initialize: a recycled one if pooled and one is
// available.
func (db *DB) allocTx(pooled bool) *Tx {
	if pooled {
		if tx, ok := db.viewPool.Get().(*Tx); ok {
			return tx
		}
	}
	return new(Tx)
}

// recycle returns a finished View transaction to the pool if nothing else
// can reach it.
func (db *DB) recycle(tx *Tx) {
	if tx.recyclable {
		db.viewPool.Put(tx)
	}
}

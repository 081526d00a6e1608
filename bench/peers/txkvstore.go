package peers

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/txkv/txkv"
)

// txkvStore runs every transaction with one strategy.
type txkvStore struct {
	db   *txkv.DB
	opts *txkv.TxOptions
}

// OpenTxkv opens txkv in dir; durable means SyncAlways.
func OpenTxkv(dir string, durable bool, st txkv.Strategy) (Store, error) {
	o := txkv.DefaultOptions()
	if !durable {
		o.Sync = txkv.SyncNone
	}
	db, err := txkv.Open(filepath.Join(dir, "txkv.db"), o)
	if err != nil {
		return nil, err
	}
	// The library's default retry policy (10 attempts): an Update that gives up under
	// contention fails the cell, as it would fail the user.
	return &txkvStore{db: db, opts: &txkv.TxOptions{Strategy: st}}, nil
}

// OpenTxkvMemory opens txkv in memory: no log, nothing durable. Not a
// contender of the tables: BenchmarkRow runs it beside the file to show what
// the log costs.
func OpenTxkvMemory(st txkv.Strategy) (Store, error) {
	db, err := txkv.Open("", txkv.DefaultOptions())
	if err != nil {
		return nil, err
	}
	return &txkvStore{db: db, opts: &txkv.TxOptions{Strategy: st}}, nil
}

func (s *txkvStore) Update(fn func(Tx) error) error {
	return s.db.Update(context.Background(), s.opts, func(tx *txkv.Tx) error { return fn(txkvTx{tx}) })
}

func (s *txkvStore) View(fn func(Tx) error) error {
	return s.db.View(context.Background(), func(tx *txkv.Tx) error { return fn(txkvTx{tx}) })
}

// Aborts counts rolled-back attempts (conflicts, deadlocks, refusals).
func (s *txkvStore) Aborts() uint64 { return s.db.Stats().Aborts }

// LogBatches returns the log's batches and records so far.
func (s *txkvStore) LogBatches() (batches, records uint64) {
	st := s.db.Stats()
	return st.WALBatches, st.WALRecords
}

// Deadlocks counts deadlock victims.
func (s *txkvStore) Deadlocks() uint64 { return s.db.Stats().Deadlocks }

func (s *txkvStore) Close() error { return s.db.Close() }

type txkvTx struct{ tx *txkv.Tx }

func (t txkvTx) Get(k []byte) ([]byte, bool, error) {
	v, err := t.tx.Get(k)
	if errors.Is(err, txkv.ErrNotFound) {
		return nil, false, nil
	}
	return v, err == nil, err
}

func (t txkvTx) Put(k, v []byte) error { return t.tx.Put(k, v) }

func (t txkvTx) Delete(k []byte) error { return t.tx.Delete(k) }

func (t txkvTx) Claim(prefix []byte) ([]byte, []byte, bool, error) {
	kvs, err := t.tx.ScanForUpdate(prefix, prefixEnd(prefix), 1, txkv.SkipLocked())
	if err != nil || len(kvs) == 0 {
		return nil, nil, false, err
	}
	return kvs[0].Key, kvs[0].Value, true, nil
}

func (t txkvTx) Scan(prefix []byte, fn func(k, v []byte) error) error {
	return t.tx.Scan(prefix, prefixEnd(prefix), fn)
}

package peers

import (
	"errors"
	"sync/atomic"

	badger "github.com/dgraph-io/badger/v4"
)

// badgerStore is Badger v4: optimistic (serializable snapshot isolation with
// read-set conflict detection at commit); the adapter retries ErrConflict
// as Badger's documentation asks applications to.
type badgerStore struct {
	db        *badger.DB
	conflicts atomic.Uint64
}

// OpenBadger opens Badger in dir; durable sets SyncWrites.
func OpenBadger(dir string, durable bool) (Store, error) {
	o := badger.DefaultOptions(dir).WithSyncWrites(durable).WithLogger(nil).
		WithMemTableSize(16 << 20).WithNumCompactors(2)
	db, err := badger.Open(o)
	if err != nil {
		return nil, err
	}
	return &badgerStore{db: db}, nil
}

func (s *badgerStore) Update(fn func(Tx) error) error {
	for {
		err := s.db.Update(func(txn *badger.Txn) error { return fn(badgerTx{txn}) })
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
		s.conflicts.Add(1)
	}
}

// Aborts counts the transactions that failed with ErrConflict.
func (s *badgerStore) Aborts() uint64 { return s.conflicts.Load() }

func (s *badgerStore) View(fn func(Tx) error) error {
	return s.db.View(func(txn *badger.Txn) error { return fn(badgerTx{txn}) })
}

func (s *badgerStore) Close() error { return s.db.Close() }

type badgerTx struct{ txn *badger.Txn }

func (t badgerTx) Get(k []byte) ([]byte, bool, error) {
	item, err := t.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	return v, err == nil, err
}

func (t badgerTx) Put(k, v []byte) error { return t.txn.Set(k, v) }

func (t badgerTx) Delete(k []byte) error { return t.txn.Delete(k) }

func (t badgerTx) Claim(prefix []byte) (k, v []byte, found bool, err error) {
	err = t.Scan(prefix, func(kk, vv []byte) error {
		k, v, found = append([]byte(nil), kk...), append([]byte(nil), vv...), true
		return errStop
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return k, v, found, err
}

var errStop = errors.New("stop")

func (t badgerTx) Scan(prefix []byte, fn func(k, v []byte) error) error {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		if err := fn(item.Key(), v); err != nil {
			return err
		}
	}
	return nil
}

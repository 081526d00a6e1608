package peers

import (
	"bytes"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

var bucket = []byte("kv")

// boltStore is bbolt: one writer at a time (a file-wide lock), readers on
// MVCC snapshots. batch routes Update through DB.Batch, which coalesces
// concurrent writers into one commit (waiting up to 10ms for company).
type boltStore struct {
	db    *bolt.DB
	batch bool
}

// OpenBolt opens bbolt in dir; durable false sets NoSync.
func OpenBolt(dir string, durable, batch bool) (Store, error) {
	db, err := bolt.Open(filepath.Join(dir, "bolt.db"), 0o600, &bolt.Options{NoSync: !durable, NoFreelistSync: true})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &boltStore{db: db, batch: batch}, nil
}

func (s *boltStore) Update(fn func(Tx) error) error {
	f := func(tx *bolt.Tx) error { return fn(boltTx{tx.Bucket(bucket)}) }
	if s.batch {
		return s.db.Batch(f)
	}
	return s.db.Update(f)
}

func (s *boltStore) View(fn func(Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx.Bucket(bucket)}) })
}

func (s *boltStore) Close() error { return s.db.Close() }

type boltTx struct{ b *bolt.Bucket }

func (t boltTx) Get(k []byte) ([]byte, bool, error) {
	v := t.b.Get(k)
	return bytes.Clone(v), v != nil, nil
}

func (t boltTx) Put(k, v []byte) error { return t.b.Put(k, v) }

func (t boltTx) Delete(k []byte) error { return t.b.Delete(k) }

func (t boltTx) Claim(prefix []byte) ([]byte, []byte, bool, error) {
	k, v := t.b.Cursor().Seek(prefix)
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, nil, false, nil
	}
	return bytes.Clone(k), bytes.Clone(v), true, nil
}

func (t boltTx) Scan(prefix []byte, fn func(k, v []byte) error) error {
	c := t.b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

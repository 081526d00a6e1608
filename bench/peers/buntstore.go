package peers

import (
	"errors"
	"path/filepath"
	"strings"

	"github.com/tidwall/buntdb"
)

// buntStore is BuntDB: an in-memory B-tree behind one RWMutex with an
// append-only file; a writer holds the lock for its whole transaction.
type buntStore struct{ db *buntdb.DB }

// OpenBunt opens BuntDB in dir; durable syncs every commit (SyncPolicy
// Always), otherwise never.
func OpenBunt(dir string, durable bool) (Store, error) {
	db, err := buntdb.Open(filepath.Join(dir, "bunt.db"))
	if err != nil {
		return nil, err
	}
	var cfg buntdb.Config
	if err := db.ReadConfig(&cfg); err != nil {
		_ = db.Close()
		return nil, err
	}
	cfg.SyncPolicy = buntdb.Never
	if durable {
		cfg.SyncPolicy = buntdb.Always
	}
	if err := db.SetConfig(cfg); err != nil {
		_ = db.Close()
		return nil, err
	}
	return &buntStore{db: db}, nil
}

func (s *buntStore) Update(fn func(Tx) error) error {
	return s.db.Update(func(tx *buntdb.Tx) error { return fn(buntTx{tx}) })
}

func (s *buntStore) View(fn func(Tx) error) error {
	return s.db.View(func(tx *buntdb.Tx) error { return fn(buntTx{tx}) })
}

func (s *buntStore) Close() error { return s.db.Close() }

type buntTx struct{ tx *buntdb.Tx }

func (t buntTx) Get(k []byte) ([]byte, bool, error) {
	v, err := t.tx.Get(string(k))
	if errors.Is(err, buntdb.ErrNotFound) {
		return nil, false, nil
	}
	return []byte(v), err == nil, err
}

func (t buntTx) Put(k, v []byte) error {
	_, _, err := t.tx.Set(string(k), string(v), nil)
	return err
}

func (t buntTx) Delete(k []byte) error {
	_, err := t.tx.Delete(string(k))
	if errors.Is(err, buntdb.ErrNotFound) {
		return nil
	}
	return err
}

func (t buntTx) Claim(prefix []byte) (k, v []byte, found bool, err error) {
	err = t.Scan(prefix, func(kk, vv []byte) error {
		k, v, found = kk, vv, true
		return errStop
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return k, v, found, err
}

func (t buntTx) Scan(prefix []byte, fn func(k, v []byte) error) error {
	var ferr error
	p := string(prefix)
	err := t.tx.AscendGreaterOrEqual("", p, func(k, v string) bool {
		if !strings.HasPrefix(k, p) {
			return false
		}
		ferr = fn([]byte(k), []byte(v))
		return ferr == nil
	})
	if err != nil {
		return err
	}
	return ferr
}

package peers

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// sqliteStore is SQLite (modernc.org/sqlite) in WAL mode, used the way Go
// programs use it well: one write connection (writers queue on a Go mutex
// instead of SQLite's sleeping busy handler) running BEGIN IMMEDIATE, and a
// pool of read connections on WAL snapshots.
type sqliteStore struct {
	mu struct {
		sync.Mutex // protects the write connection and its statements; one writer at a time
		conn       *sql.Conn
		get, put   *sql.Stmt
		del, first *sql.Stmt
		scan       *sql.Stmt
	}
	w, r *sql.DB
	rget *sql.Stmt // on the read pool
	rscn *sql.Stmt
}

// OpenSQLite opens SQLite in dir; durable means synchronous=FULL, else OFF.
func OpenSQLite(dir string, durable bool) (Store, error) {
	syncMode := "OFF"
	if durable {
		syncMode = "FULL"
	}
	dsn := fmt.Sprintf("file:%s?_pragma=journal_mode(WAL)&_pragma=synchronous(%s)&_pragma=busy_timeout(10000)",
		filepath.Join(dir, "sqlite.db"), syncMode)
	s := &sqliteStore{}
	var err error
	if s.w, err = sql.Open("sqlite", dsn); err != nil {
		return nil, err
	}
	if err := s.init(dsn); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func (s *sqliteStore) init(dsn string) error {
	ctx := context.Background()
	if _, err := s.w.Exec(`CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID`); err != nil {
		return err
	}
	var err error
	if s.mu.conn, err = s.w.Conn(ctx); err != nil {
		return err
	}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&s.mu.get, `SELECT v FROM kv WHERE k = ?`},
		{&s.mu.put, `INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`},
		{&s.mu.del, `DELETE FROM kv WHERE k = ?`},
		{&s.mu.first, `SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k LIMIT 1`},
		{&s.mu.scan, `SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k`},
	} {
		if *p.st, err = s.mu.conn.PrepareContext(ctx, p.sql); err != nil {
			return err
		}
	}
	if s.r, err = sql.Open("sqlite", dsn+"&_pragma=query_only(1)"); err != nil {
		return err
	}
	s.r.SetMaxOpenConns(4)
	if s.rget, err = s.r.Prepare(`SELECT v FROM kv WHERE k = ?`); err != nil {
		return err
	}
	s.rscn, err = s.r.Prepare(`SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k`)
	return err
}

func (s *sqliteStore) Update(fn func(Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx := context.Background()
	if _, err := s.mu.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	t := sqliteTx{get: s.mu.get, put: s.mu.put, del: s.mu.del, first: s.mu.first, scan: s.mu.scan}
	if err := fn(t); err != nil {
		_, _ = s.mu.conn.ExecContext(ctx, "ROLLBACK")
		return err
	}
	_, err := s.mu.conn.ExecContext(ctx, "COMMIT")
	return err
}

func (s *sqliteStore) View(fn func(Tx) error) error {
	tx, err := s.r.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	return fn(sqliteTx{get: tx.Stmt(s.rget), scan: tx.Stmt(s.rscn)})
}

func (s *sqliteStore) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.mu.get, s.mu.put, s.mu.del, s.mu.first, s.mu.scan, s.rget, s.rscn} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.mu.conn != nil {
		errs = append(errs, s.mu.conn.Close())
	}
	for _, db := range []*sql.DB{s.r, s.w} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

type sqliteTx struct{ get, put, del, first, scan *sql.Stmt }

var errReadOnly = errors.New("txkv: peers: write in a read-only transaction")

func (t sqliteTx) Get(k []byte) ([]byte, bool, error) {
	var v []byte
	err := t.get.QueryRow(k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	return v, err == nil, err
}

func (t sqliteTx) Put(k, v []byte) error {
	if t.put == nil {
		return errReadOnly
	}
	_, err := t.put.Exec(k, v)
	return err
}

func (t sqliteTx) Delete(k []byte) error {
	if t.del == nil {
		return errReadOnly
	}
	_, err := t.del.Exec(k)
	return err
}

func (t sqliteTx) Claim(prefix []byte) ([]byte, []byte, bool, error) {
	if t.first == nil {
		return nil, nil, false, errReadOnly
	}
	var k, v []byte
	err := t.first.QueryRow(prefix, prefixEnd(prefix)).Scan(&k, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, false, nil
	}
	return k, v, err == nil, err
}

func (t sqliteTx) Scan(prefix []byte, fn func(k, v []byte) error) error {
	rows, err := t.scan.Query(prefix, prefixEnd(prefix))
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return rows.Err()
}

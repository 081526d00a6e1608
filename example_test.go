package txkv_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/txkv/txkv"
)

// Open a database file, write, close, and find the data again after a
// reopen. Open("", nil) would give an in-memory database instead.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "txkv-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "example.db")
	ctx := context.Background()

	db, err := txkv.Open(path, nil) // nil: the defaults (optimistic, serializable, fsync every commit)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := db.Put(ctx, []byte("greeting"), []byte("hello, durable world")); err != nil {
		fmt.Println(err)
	}
	if err := db.Close(); err != nil {
		fmt.Println(err)
	}

	db, err = txkv.Open(path, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	v, err := db.Get(ctx, []byte("greeting"))
	fmt.Println(string(v), err)
	// Output: hello, durable world <nil>
}

// Update runs a read-modify-write transaction and commits it, retrying it
// by itself if a concurrent transaction conflicts. Returning an error rolls
// everything back.
func ExampleDB_Update() {
	db, err := txkv.Open("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	_ = db.Put(ctx, []byte("acct/alice"), []byte("100"))
	_ = db.Put(ctx, []byte("acct/bob"), []byte("100"))

	transfer := func(from, to string, amount int) error {
		return db.Update(ctx, nil, func(tx *txkv.Tx) error {
			fb, err := balance(tx, from)
			if err != nil {
				return err
			}
			tb, err := balance(tx, to)
			if err != nil {
				return err
			}
			if fb < amount {
				return fmt.Errorf("%s has only %d", from, fb)
			}
			if err := tx.Put([]byte(from), []byte(strconv.Itoa(fb-amount))); err != nil {
				return err
			}
			return tx.Put([]byte(to), []byte(strconv.Itoa(tb+amount)))
		})
	}
	fmt.Println(transfer("acct/alice", "acct/bob", 30))
	fmt.Println(transfer("acct/alice", "acct/bob", 500)) // refused: nothing changes

	a, _ := db.Get(ctx, []byte("acct/alice"))
	b, _ := db.Get(ctx, []byte("acct/bob"))
	fmt.Printf("alice=%s bob=%s\n", a, b)
	// Output:
	// <nil>
	// acct/alice has only 70
	// alice=70 bob=130
}

func balance(tx *txkv.Tx, key string) (int, error) {
	v, err := tx.Get([]byte(key))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(v))
}

// View reads a consistent snapshot without locks or validation; Scan walks
// the range [start, end) in key order.
func ExampleDB_View() {
	db, err := txkv.Open("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	for _, fruit := range []string{"pear", "apple", "fig"} {
		_ = db.Put(ctx, []byte("fruit/"+fruit), []byte("in stock"))
	}
	_ = db.Put(ctx, []byte("veg/leek"), []byte("in stock"))

	err = db.View(ctx, func(tx *txkv.Tx) error {
		return tx.Scan([]byte("fruit/"), []byte("fruit0"), func(k, v []byte) error {
			fmt.Printf("%s: %s\n", k, v)
			return nil
		})
	})
	fmt.Println(err)
	// Output:
	// fruit/apple: in stock
	// fruit/fig: in stock
	// fruit/pear: in stock
	// <nil>
}

// DB.Get reads one key; an absent key is ErrNotFound.
func ExampleDB_Get() {
	db, err := txkv.Open("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	_ = db.Put(ctx, []byte("color"), []byte("blue"))

	v, err := db.Get(ctx, []byte("color"))
	fmt.Println(string(v), err)
	_, err = db.Get(ctx, []byte("shape"))
	fmt.Println(errors.Is(err, txkv.ErrNotFound))
	// Output:
	// blue <nil>
	// true
}

// DB.Put writes one key in its own durable transaction; DB.Delete removes one.
func ExampleDB_Put() {
	db, err := txkv.Open("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()

	fmt.Println(db.Put(ctx, []byte("session/42"), []byte("alice")))
	fmt.Println(db.Put(ctx, nil, []byte("x"))) // bad input gets a clear error
	fmt.Println(db.Delete(ctx, []byte("session/42")))
	_, err = db.Get(ctx, []byte("session/42"))
	fmt.Println(err)
	// Output:
	// <nil>
	// txkv: invalid key: key is nil
	// <nil>
	// txkv: key not found
}

// PutIfVersion is the optimistic version check across a user's think time:
// read a document and its version, let the user edit, and write only if
// nobody changed it meanwhile.
func ExampleTx_PutIfVersion() {
	db, err := txkv.Open("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	_ = db.Put(ctx, []byte("doc"), []byte("draft"))

	// Alice loads the document and its version.
	var seen uint64
	_ = db.View(ctx, func(tx *txkv.Tx) error {
		_, v, err := tx.GetVersioned([]byte("doc"))
		seen = v
		return err
	})

	// While Alice thinks, Bob saves his edit.
	_ = db.Put(ctx, []byte("doc"), []byte("bob's edit"))

	// Alice saves with the version she saw: refused, nothing overwritten.
	err = db.Update(ctx, nil, func(tx *txkv.Tx) error {
		return tx.PutIfVersion([]byte("doc"), []byte("alice's edit"), seen)
	})
	fmt.Println(errors.Is(err, txkv.ErrVersionMismatch))
	v, _ := db.Get(ctx, []byte("doc"))
	fmt.Println(string(v))
	// Output:
	// true
	// bob's edit
}

// CompareAndSwap changes a key only if it holds the expected value; old nil
// means "only if absent", new nil deletes.
func ExampleDB_CompareAndSwap() {
	db, err := txkv.Open("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	lock := []byte("leader")

	ok, err := db.CompareAndSwap(ctx, lock, nil, []byte("node-1")) // claim if free
	fmt.Println(ok, err)
	ok, _ = db.CompareAndSwap(ctx, lock, nil, []byte("node-2")) // taken
	fmt.Println(ok)
	ok, _ = db.CompareAndSwap(ctx, lock, []byte("node-1"), nil) // node-1 resigns
	fmt.Println(ok)
	ok, _ = db.CompareAndSwap(ctx, lock, nil, []byte("node-2"))
	fmt.Println(ok)
	// Output:
	// true <nil>
	// false
	// true
	// true
}

// Increment adds to an 8-byte counter atomically; an absent counter is 0.
func ExampleDB_Increment() {
	db, err := txkv.Open("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()

	n, _ := db.Increment(ctx, []byte("likes"), 1)
	fmt.Println(n)
	n, _ = db.Increment(ctx, []byte("likes"), 10)
	fmt.Println(n)
	n, _ = db.Increment(ctx, []byte("likes"), -3)
	fmt.Println(n)

	_ = db.Put(ctx, []byte("name"), []byte("not a number"))
	_, err = db.Increment(ctx, []byte("name"), 1)
	fmt.Println(errors.Is(err, txkv.ErrNotCounter))
	// Output:
	// 1
	// 11
	// 8
	// true
}

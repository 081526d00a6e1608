package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv"
)

const likeUsers = 1000

func likesSpec() Spec {
	return Spec{
		Name:  "likes",
		Title: "Social likes",
		Summary: "A hundred counter reads per write; a write likes a post (refused if this user already " +
			"likes it: idempotent) or, one in five, unlikes it, updating a like record and the post's " +
			"counter. Invariant: every counter = its like records; one like per user and post.",
		Profile: Profile{ConflictRate: 0.01, ReadWriteRatio: 100, TxDuration: time.Millisecond, UsersCanWait: true},
		HotSet:  100, Sweep: []int{5, 50, 500},
		Recipe: "pessimistic: a like or unlike LockKeys(Exclusive) its like record and the post's counter, then " +
			"reads and writes; the others: plain Get and Put (the guide's like, §7)",
		OrderedLocks: true,
		New:          func(cfg Config) Instance { return &likes{n: cfg.hotSet(100), think: cfg.think(0)} },
	}
}

type likes struct {
	n     int
	think time.Duration
	net   atomic.Int64 // acknowledged likes minus acknowledged unlikes
}

func likeCount(p int) []byte { return key("likes/count/%06d", p) }

func likeKey(p, u int) []byte { return key("likes/by/%06d/%05d", p, u) }

func (l *likes) Setup(ctx context.Context, db *txkv.DB) error {
	return load(ctx, db, l.n, func(i int) ([]byte, []byte) { return likeCount(i), enc(0) })
}

func (l *likes) Op(ctx context.Context, db *txkv.DB, opts *txkv.TxOptions, w *Worker) error {
	p := w.pick(l.n)
	if !w.oneIn(101) {
		w.readsOnly()
		return db.Update(ctx, opts, func(tx *txkv.Tx) error {
			_, err := tx.Get(likeCount(p))
			return err
		})
	}
	u, unlike := w.pick(likeUsers), w.oneIn(5)
	err := db.Update(ctx, opts, func(tx *txkv.Tx) error {
		if err := lockForWrite(tx, opts.Strategy, likeKey(p, u), likeCount(p)); err != nil {
			return err
		}
		_, err := tx.Get(likeKey(p, u))
		liked := err == nil
		if err != nil && !errors.Is(err, txkv.ErrNotFound) {
			return err
		}
		if liked != unlike {
			return ErrRejected // a second like, or unliking what is not liked
		}
		n, err := getInt(tx, likeCount(p))
		if err != nil {
			return err
		}
		think(l.think)
		if unlike {
			if err := tx.Delete(likeKey(p, u)); err != nil {
				return err
			}
			return tx.Put(likeCount(p), enc(n-1))
		}
		if err := tx.Put(likeKey(p, u), []byte{1}); err != nil {
			return err
		}
		return tx.Put(likeCount(p), enc(n+1))
	})
	if err == nil {
		if unlike {
			l.net.Add(-1)
		} else {
			l.net.Add(1)
		}
	}
	return err
}

func (l *likes) Check(ctx context.Context, db *txkv.DB) error {
	return db.View(ctx, func(tx *txkv.Tx) error {
		var total int64
		for p := range l.n {
			var records int64
			err := scanPrefix(tx, string(key("likes/by/%06d/", p)), func(_, _ []byte) error {
				records++
				return nil
			})
			if err != nil {
				return err
			}
			n, err := getInt(tx, likeCount(p))
			if err != nil {
				return err
			}
			if n != records {
				return violation("likes: post %d counter says %d, %d like records", p, n, records)
			}
			total += records
		}
		if total != l.net.Load() {
			return violation("likes: %d like records, %d acknowledged (likes - unlikes)", total, l.net.Load())
		}
		return nil
	})
}

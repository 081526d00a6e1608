package bench

import (
	"bytes"
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv"
)

// free marks an unbooked seat.
var free = []byte{0}

const sectionSize = 10

func ticketSpec() Spec {
	return Spec{
		Name:  "tickets",
		Title: "Ticket booking",
		Summary: "Five seat-map views (scan a section of ten seats) per write; a write books a random " +
			"seat (refused when taken) or, one in four, cancels one. A booking writes the seat and a " +
			"booking record. Invariant: no seat booked twice — bookings = booked seats, each pointing " +
			"at the other.",
		Profile: Profile{ConflictRate: 0.15, ReadWriteRatio: 5, TxDuration: 100 * time.Millisecond, UsersCanWait: true},
		HotSet:  100, Sweep: []int{20, 100, 1000},
		Think: 200 * time.Microsecond,
		Recipe: "pessimistic: a booking or cancellation LockKeys(Exclusive) its seat, then reads and writes; " +
			"the others: plain Get and Put (the guide's bookSeat, §7); a seat-map view is a Scan",
		OrderedLocks: true,
		New: func(cfg Config) Instance {
			return &tickets{n: max(cfg.hotSet(100), 1), think: cfg.think(200 * time.Microsecond)}
		},
	}
}

type tickets struct {
	n     int
	think time.Duration
	net   atomic.Int64 // acknowledged bookings minus acknowledged cancellations
}

func seatKey(i int) []byte { return key("tix/seat/%06d", i) }

func bookingKey(id []byte) []byte { return append([]byte("tix/booking/"), id...) }

func (t *tickets) Setup(ctx context.Context, db *txkv.DB) error {
	return load(ctx, db, t.n, func(i int) ([]byte, []byte) { return seatKey(i), free })
}

func (t *tickets) Op(ctx context.Context, db *txkv.DB, opts *txkv.TxOptions, w *Worker) error {
	if !w.oneIn(6) {
		w.readsOnly()
		lo := w.pick(t.n) / sectionSize * sectionSize
		return db.Update(ctx, opts, func(tx *txkv.Tx) error {
			return tx.Scan(seatKey(lo), seatKey(lo+sectionSize), func(_, _ []byte) error { return nil })
		})
	}
	seat, cancel, id := w.pick(t.n), w.oneIn(4), []byte(w.NextID())
	err := db.Update(ctx, opts, func(tx *txkv.Tx) error {
		if err := lockForWrite(tx, opts.Strategy, seatKey(seat)); err != nil {
			return err
		}
		cur, err := tx.Get(seatKey(seat))
		if err != nil {
			return err
		}
		think(t.think)
		switch {
		case cancel && !bytes.Equal(cur, free):
			if err := tx.Delete(bookingKey(cur)); err != nil {
				return err
			}
			return tx.Put(seatKey(seat), free)
		case !cancel && bytes.Equal(cur, free):
			if err := tx.Put(bookingKey(id), strconv.AppendInt(nil, int64(seat), 10)); err != nil {
				return err
			}
			return tx.Put(seatKey(seat), id)
		}
		return ErrRejected // booking a taken seat, cancelling a free one
	})
	if err == nil {
		if cancel {
			t.net.Add(-1)
		} else {
			t.net.Add(1)
		}
	}
	return err
}

func (t *tickets) Check(ctx context.Context, db *txkv.DB) error {
	return db.View(ctx, func(tx *txkv.Tx) error {
		holder := map[string]int{} // booking id -> seat holding it
		err := scanPrefix(tx, "tix/seat/", func(k, v []byte) error {
			if !bytes.Equal(v, free) {
				seat, _ := strconv.Atoi(string(k[len("tix/seat/"):]))
				holder[string(v)] = seat
			}
			return nil
		})
		if err != nil {
			return err
		}
		bookings := 0
		err = scanPrefix(tx, "tix/booking/", func(k, v []byte) error {
			bookings++
			id := string(k[len("tix/booking/"):])
			seat, ok := holder[id]
			if !ok || strconv.Itoa(seat) != string(v) {
				return violation("tickets: booking %s is for seat %s, which is not held by it (double booking)", id, v)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if bookings != len(holder) || int64(bookings) != t.net.Load() {
			return violation("tickets: %d booking records, %d booked seats, %d acknowledged", bookings, len(holder), t.net.Load())
		}
		return nil
	})
}

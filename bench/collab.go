package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv"
)

const (
	initialSongs   = 4
	firstSong      = 1 << 24 // songs added by edits are numbered from here
	maxResubmits   = 200     // version mismatches one edit may transform before giving up
	collabReadEdit = 2       // one read per this many operations
)

func collabSpec() Spec {
	return Spec{
		Name:  "collab",
		Title: "Collaborative editing",
		Summary: "Editors fetch a playlist and its version, compose an insert at a position, then " +
			"submit it with PutIfVersion. On a version mismatch the editor fetches the edits it missed " +
			"from the operation log, transforms its position past them (operational transformation) " +
			"and resubmits. Invariant: every acknowledged edit is present exactly once and the " +
			"playlist equals the replay of its operation log.",
		Profile: Profile{ConflictRate: 0.04, ReadWriteRatio: 1, TxDuration: 2 * time.Millisecond, Distributed: true},
		HotSet:  10, Sweep: []int{2, 10, 100},
		Think: 100 * time.Microsecond,
		Recipe: "every strategy: load the playlist and its version in View, no transaction while the user edits, " +
			"save with PutIfVersion in an Update; on a mismatch, merge and save again (the guide's loadDoc and saveDoc, §7)",
		OrderedLocks: true,
		New: func(cfg Config) Instance {
			c := &collab{n: cfg.hotSet(10), think: cfg.think(100 * time.Microsecond)}
			c.songs.Store(firstSong)
			c.mu.acked = map[uint32]int{}
			return c
		},
	}
}

type collab struct {
	n          int
	think      time.Duration
	songs      atomic.Uint32
	transforms atomic.Uint64
	mu         struct {
		sync.Mutex                // protects acked
		acked      map[uint32]int // song -> playlist, for every acknowledged insert
	}
}

// playlist is a list's value: the number of edits applied, then the songs.
type playlist struct {
	seq   uint64
	songs []uint32
}

func (p playlist) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, p.seq)
	for _, s := range p.songs {
		b = binary.BigEndian.AppendUint32(b, s)
	}
	return b
}

func decodePlaylist(b []byte) (playlist, error) {
	if len(b) < 8 || (len(b)-8)%4 != 0 {
		return playlist{}, fmt.Errorf("txkv: bench: playlist value of %d bytes", len(b))
	}
	p := playlist{seq: binary.BigEndian.Uint64(b)}
	for i := 8; i < len(b); i += 4 {
		p.songs = append(p.songs, binary.BigEndian.Uint32(b[i:]))
	}
	return p, nil
}

// insert returns the playlist with song at pos and one more edit applied.
func (p playlist) insert(pos int, song uint32) playlist {
	return playlist{seq: p.seq + 1, songs: slices.Insert(slices.Clone(p.songs), pos, song)}
}

// editOp is one entry of a playlist's operation log.
type editOp struct {
	pos  int
	song uint32
}

func listKey(p int) []byte { return key("collab/list/%06d", p) }

func opKey(p int, seq uint64) []byte { return key("collab/op/%06d/%010d", p, seq) }

func encodeOp(o editOp) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(o.pos)), o.song)
}

func decodeOp(b []byte) (editOp, error) {
	if len(b) != 8 {
		return editOp{}, fmt.Errorf("txkv: bench: edit op of %d bytes", len(b))
	}
	return editOp{pos: int(binary.BigEndian.Uint32(b)), song: binary.BigEndian.Uint32(b[4:])}, nil
}

func initialPlaylist(p int) playlist {
	var pl playlist
	for i := range initialSongs {
		pl.songs = append(pl.songs, uint32(p*initialSongs+i+1))
	}
	return pl
}

func (c *collab) Setup(ctx context.Context, db *txkv.DB) error {
	return load(ctx, db, c.n, func(i int) ([]byte, []byte) { return listKey(i), initialPlaylist(i).encode() })
}

func (c *collab) Op(ctx context.Context, db *txkv.DB, opts *txkv.TxOptions, w *Worker) error {
	p := w.pick(c.n)
	if w.oneIn(collabReadEdit) {
		w.readsOnly()
		return db.View(ctx, func(tx *txkv.Tx) error {
			_, _, err := tx.GetVersioned(listKey(p))
			return err
		})
	}
	base, ver, _, err := c.fetch(ctx, db, p, 0)
	if err != nil {
		return err
	}
	pos, song := w.pick(len(base.songs)+1), c.songs.Add(1)
	think(c.think) // the user composing the edit; no transaction is open
	for range maxResubmits {
		next := base.insert(pos, song)
		err := db.Update(ctx, opts, func(tx *txkv.Tx) error {
			if err := tx.PutIfVersion(listKey(p), next.encode(), ver); err != nil {
				return err
			}
			return tx.Put(opKey(p, next.seq), encodeOp(editOp{pos, song}))
		})
		if !errors.Is(err, txkv.ErrVersionMismatch) {
			if err == nil {
				c.mu.Lock()
				c.mu.acked[song] = p
				c.mu.Unlock()
			}
			return err
		}
		c.transforms.Add(1)
		var missed []editOp
		if base, ver, missed, err = c.fetch(ctx, db, p, base.seq); err != nil {
			return err
		}
		pos = transform(pos, missed)
	}
	return fmt.Errorf("txkv: bench: collab edit resubmitted %d times: %w", maxResubmits, txkv.ErrConflict)
}

// transform moves an insert position, relative to an older version of the
// list, past the inserts applied since (in log order): an insert at or before
// our position shifts it right. Ties go to the edit that committed first, so
// every replica orders them the same way.
func transform(pos int, missed []editOp) int {
	for _, o := range missed {
		if o.pos <= pos {
			pos++
		}
	}
	return pos
}

// fetch reads playlist p, its version and the log entries after seq in View,
// as the guide's loadDoc does: an editor holds no lock and no transaction
// while the user edits.
func (c *collab) fetch(ctx context.Context, db *txkv.DB, p int, seq uint64) (pl playlist, ver uint64, missed []editOp, err error) {
	err = db.View(ctx, func(tx *txkv.Tx) error {
		v, vv, err := tx.GetVersioned(listKey(p))
		if err != nil {
			return err
		}
		if pl, err = decodePlaylist(v); err != nil {
			return err
		}
		ver = vv
		// A snapshot is one point in time: a list at seq n without its log
		// entries up to n is a lost edit, and stops the run.
		missed, err = readOps(tx, p, seq+1, pl.seq)
		return err
	})
	return pl, ver, missed, err
}

// readOps reads the log entries lo..hi of playlist p.
func readOps(tx *txkv.Tx, p int, lo, hi uint64) ([]editOp, error) {
	if lo > hi {
		return nil, nil
	}
	var ops []editOp
	err := tx.Scan(opKey(p, lo), opKey(p, hi+1), func(_, v []byte) error {
		o, err := decodeOp(v)
		ops = append(ops, o)
		return err
	})
	if err == nil && uint64(len(ops)) != hi-lo+1 {
		err = violation("collab: playlist %d log has %d entries in %d..%d", p, len(ops), lo, hi)
	}
	return ops, err
}

func (c *collab) Counters() map[string]uint64 {
	return map[string]uint64{"transforms": c.transforms.Load()}
}

func (c *collab) Check(ctx context.Context, db *txkv.DB) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return db.View(ctx, func(tx *txkv.Tx) error {
		total, seen := 0, map[uint32]bool{}
		for p := range c.n {
			v, err := tx.Get(listKey(p))
			if err != nil {
				return err
			}
			pl, err := decodePlaylist(v)
			if err != nil {
				return err
			}
			ops, err := readOps(tx, p, 1, pl.seq)
			if err != nil {
				return err
			}
			replay := initialPlaylist(p)
			for _, o := range ops {
				if o.pos > len(replay.songs) {
					return violation("collab: playlist %d log inserts at %d past the end (%d)", p, o.pos, len(replay.songs))
				}
				replay = replay.insert(o.pos, o.song)
			}
			if !slices.Equal(replay.songs, pl.songs) {
				return violation("collab: playlist %d differs from the replay of its %d edits", p, len(ops))
			}
			for _, s := range pl.songs {
				if q, ok := c.mu.acked[s]; s >= firstSong && (!ok || q != p) {
					return violation("collab: playlist %d holds song %d, never acknowledged for it", p, s)
				}
				if seen[s] {
					return violation("collab: song %d appears twice", s)
				}
				seen[s] = true
			}
			total += len(pl.songs) - initialSongs
		}
		if total != len(c.mu.acked) {
			return violation("collab: playlists hold %d added songs, %d inserts acknowledged", total, len(c.mu.acked))
		}
		return nil
	})
}

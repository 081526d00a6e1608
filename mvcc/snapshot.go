package mvcc

import "sync/atomic"

// Snapshot is a reader: it sees, for every key, the newest version <= TS(). It pins the epoch
// that was current when it was taken, so versions that a checkpoint moves to Base stay in the
// memtable until it closes. Use it from one goroutine at a time; Close it when done.
type Snapshot struct {
	s      *Store
	ts     uint64
	epoch  uint64
	shard  uint8 // the registry shard it is registered in
	latest bool
	closed atomic.Bool
	// seen is the newest memtable version (value or tombstone) a read through this snapshot
	// returned or was decided by: what a reader must wait to be durable (DurableTS).
	seen uint64
}

// Snapshot registers a reader at ts = ReadTS() and pins the current epoch. The GC watermark
// can never pass an open snapshot (invariant 2; see oldestSnapshot).
func (s *Store) Snapshot() *Snapshot {
	sn := new(Snapshot)
	s.OpenSnapshot(sn)
	return sn
}

// OpenSnapshot is Snapshot into a zero Snapshot the caller owns (embedded in a transaction, so
// that opening a reader does not allocate). sn must not be reused after Close.
func (s *Store) OpenSnapshot(sn *Snapshot) { s.register(sn, true) }

// Latest returns a reader that sees the newest installed version of each key — for strict 2PL
// reads made under locks, where no other writer can touch the key. It pins an epoch but does
// not hold back GC; TS() is math.MaxUint64.
func (s *Store) Latest() *Snapshot {
	sn := new(Snapshot)
	s.OpenLatest(sn)
	return sn
}

// OpenLatest is Latest into a zero Snapshot the caller owns.
func (s *Store) OpenLatest(sn *Snapshot) { s.register(sn, false) }

// TS returns the snapshot's read timestamp (math.MaxUint64 for Latest).
func (sn *Snapshot) TS() uint64 { return sn.ts }

// Seen returns the newest memtable version — a value or a tombstone — that decided a read
// through this snapshot or its iterators (0 if none did). A reader that acknowledges what it
// read waits for WaitDurable(Seen()) first. (Versions read from Base are durable already.)
func (sn *Snapshot) Seen() uint64 { return sn.seen }

func (sn *Snapshot) note(ts uint64) { sn.seen = max(sn.seen, ts) }

// Close unregisters the snapshot and unpins its epoch. It is idempotent. If it was the last
// reader holding back a Flushed removal, Close performs that removal (one pass over the
// memtable) before returning.
func (sn *Snapshot) Close() {
	if !sn.closed.CompareAndSwap(false, true) {
		return
	}
	s := sn.s
	if !s.unregister(sn) {
		return
	}
	s.reg.mu.Lock()
	ready := s.releaseFlushesLocked()
	s.reg.mu.Unlock()
	if ready {
		s.collect()
	}
}

// Get returns the newest version of key <= TS(). A tombstone, or no version at all, gives
// ok=false and version 0. The memtable is consulted first; a key with no visible version there
// falls through to Base. The returned value must not be modified.
func (sn *Snapshot) Get(key []byte) (value []byte, version uint64, ok bool, err error) {
	if sn.closed.Load() {
		return nil, 0, false, ErrSnapshotClosed
	}
	s := sn.s
	if c := s.lookup(key); c != nil {
		if v := c.visible(sn.ts); v != nil {
			sn.note(v.ts)
			if v.tomb {
				return nil, 0, false, nil
			}
			return v.value, v.ts, true, nil
		}
	}
	if s.emptyBase {
		return nil, 0, false, nil
	}
	value, version, ok, err = s.base.Get(key)
	if err != nil {
		return nil, 0, false, err
	}
	if !ok {
		return nil, 0, false, nil
	}
	if version > sn.ts {
		return nil, 0, false, ErrSnapshotTooOld
	}
	return value, version, true, nil
}

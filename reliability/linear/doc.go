// Package linear holds the linearizability tests of txkv's single-key
// operations (db.Get, Put, CompareAndSwap, Increment); the package itself is
// empty, the tests are in package linear_test.
//
// # Method
//
// Concurrent clients call the operations on a few keys. Each call is
// stamped with a logical clock just before it starts and just after it
// returns, giving the interval in which it must have taken effect:
//
//	client 0   |---Put(k,A)---|            |--Get(k)=A--|
//	client 1         |------CAS(k,A->B)=false------|
//	clock      1      2        3         4  5          6
//
// A history is linearizable (Herlihy & Wing, TOPLAS 1990) if each operation
// can be given one point inside its interval so that, in that order, every
// result is what a sequential register (here: an int64 that may be absent,
// as Increment treats absence as 0) would have returned. Porcupine
// (github.com/anishathalye/porcupine, the checker etcd and MIT 6.824 use)
// searches for such an order with the Wing–Gong–Lowe algorithm and
// memoisation; the model's Partition splits the history per key, since
// operations on different keys commute — each key is checked alone, which
// keeps the search small. A timeout yields Unknown, which fails the test:
// an unproven history proves nothing.
//
// Values are unique: every Put or CompareAndSwap writes a value nobody else
// writes, spaced 2^24 apart so that Increments (by 1..3) never reach
// another writer's value. Once a key's state moves past a value it never
// returns to it, so a read of an old value is provably stale.
//
// # The checker is tested too
//
// Two deliberately broken wrappers of the DB must be rejected:
//
//   - stale read: Get sometimes returns a value that was overwritten by a
//     write that completed before the Get began (provably illegal);
//   - lost put: Put sometimes reports success without writing.
package linear

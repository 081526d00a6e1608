// Package mvcc is txkv's multi-version memtable: versioned keys in a B-tree, the timestamp
// oracle with its read watermark, the registry of active snapshots, epoch pinning, merged
// iteration over memtable, checkpointed base and a transaction's own writes, and garbage
// collection of versions no reader can see.
//
// # Version chains
//
// The memtable is a github.com/google/btree BTreeG ordered by key. Each slot holds the key and
// a chain of versions, newest (highest commit ts) first. A version is a value or a tombstone
// (the commit ts of a delete). Keys with no version in memory live only in Base, the
// checkpointed state (a bbolt bucket in practice, reached through the small Base interface so
// that this package never imports wal).
//
//	btree (by key)            version chains, newest first          Base (checkpointed)
//	┌──────────┐
//	│ "apple"  │──▶ [ts 42 "red"] ──▶ [ts 17 "green"] ──▶ nil       "apple" @9  "yellow"
//	│ "kiwi"   │──▶ [ts 40 ✝ tombstone] ──▶ [ts 12 "ripe"] ──▶ nil  "kiwi"  @5  "raw"
//	│ "pear"   │──▶ [ts 44 "soft"] ──▶ nil                           (absent)
//	└──────────┘                                                    "plum"  @3  "dark"
//
// A reader at snapshot ts reads, for each key, the first version in the chain with
// version <= ts; a tombstone means "not found"; no such version means "ask Base". In the picture
// a snapshot at ts 41 reads apple=green@17, kiwi=not found (tombstone @40), pear from Base
// (absent), plum=dark@3 from Base.
//
// Point lookups do not walk the B-tree: a hash index (index.go) maps each key to its chain,
// and the B-tree serves ordered scans. A point read of a cold key costs one cache miss per
// object it touches, so the index is laid out for few: an open-addressing table of 16-byte
// {hash, chain} slots that compares full 64-bit hashes, so the only key it reads is the one
// that matches — and that key is allocated with its chain, which the read needs next, and with
// the key's first version and its value when they are small (alloc.go): a read of a key written
// once touches the index slot and one object. The Go map it replaces touched its control word,
// a 24-byte slot, the key and then the version; and every reader RLocked the memtable's one
// RWMutex, where now it locks one of 64 index shards. On 1M keys the index cut BenchmarkGet1M
// by ~10%, the 8-goroutine BenchmarkGet1MParallel by ~15% and the DB-level point get
// (BenchmarkPointGet/txkvDBGet) by ~16%; the single allocation saved ~5%, ~6% and ~9% more, and
// 48 bytes per key of BenchmarkGet1M's shape.
//
// Chains are edited by one writer at a time (installs hold the B-tree's write lock; GC passes
// hold gcMu) while readers walk them without any lock: next pointers are atomic, a new version
// is fully built before it is linked in, and GC only unlinks versions that no reader can reach
// (see "Garbage collection").
//
// # The oracle and the read watermark
//
// Commit timestamps come from Next (the serialization point of the commit protocol: after the
// write locks, before validation — Silo, SOSP 2013, §4). A ts is pending until Done marks it
// committed (after Install) or aborted. The read watermark ReadTS is the highest ts such that
// every ts <= it is done:
//
//	ts:     41   42   43   44   45   46
//	        done done PEND done done PEND     ReadTS = 42
//	                   ▲                      (43 is pending: 44 and 45 wait behind it)
//	Done(43) ─────────────────────────────▶  ReadTS = 45
//
// Snapshot reads at ReadTS, so a reader always sees a complete prefix of the commit order and
// never a half-installed transaction. This is Badger's oracle/watermark (txn.go, y/watermark.go)
// with the same invariant: ReadTS only moves forward and never passes a pending ts. WaitVisible
// lets a committer wait until its own ts is below the watermark, so its next transaction reads
// its writes.
//
// # The durable watermark
//
// A commit is installed (and its ts done) before its log record is durable: the engine releases
// its locks then, so conflicting transactions do not queue behind an fsync. DurableTS is the
// highest ts such that every ts <= it is done and, if it committed, durable (durable.go). The
// log writer marks batches with MarkDurable; aborted timestamps, and every commit of a store
// without a log, are marked by DoneDurable. DurableTS <= ReadTS. Readers remember the newest
// memtable version that decided a read (Snapshot.Seen — a value, or a tombstone that hid a key)
// and WaitDurable for it before reporting anything; if the log fails, FailDurable ends those
// waits with its error. The GC watermark is capped by DurableTS (see "Garbage collection").
//
// Why reading at the watermark is serializable for read-only transactions: every committed
// transaction with ts <= ReadTS is fully installed and none with ts > ReadTS is visible, so the
// snapshot equals the state after the serial execution, in ts order, of a prefix of the
// committed transactions; a read-only transaction placed right after that prefix is consistent
// with the serial order, and never needs validation (as in Silo's snapshots and PostgreSQL's
// read-only deferrable transactions). Read-write transactions validate against later commits.
//
// # The snapshot registry and the GC watermark
//
// Snapshot registers its ts in a registry, choosing ts = ReadTS at that moment, under the lock
// of one of 16 registry shards (picked at random, so readers on different cores do not share a
// lock). GCWatermark = min(oldest open snapshot, ReadTS, DurableTS): it reads ReadTS first, then visits
// every shard under its lock. A snapshot registered in a shard after the visit read ReadTS
// later, so its ts is at least the watermark's; one registered before is seen. Because a new
// snapshot's ts is ReadTS, which only grows, the GC watermark never exceeds an open snapshot and
// never decreases. Latest readers (strict 2PL reads made under locks) see the newest installed
// version and do not hold back GC: nothing below the newest version is ever needed by them.
//
// # Checkpoints and epochs
//
// A checkpoint (driven by txn/wal) picks upTo <= GCWatermark, writes CheckpointEntries(upTo) —
// the newest version <= upTo of each key — to Base in one atomic transaction, then calls
// Flushed(upTo). Base therefore only ever holds versions <= the GC watermark, hence <= every
// open and future snapshot's ts: a reader falling through to Base can take whatever it finds.
//
// After Flushed(upTo) the memtable versions <= upTo are redundant — but not yet removable. An
// iterator reads Base and the memtable in chunks at different moments; one that read a Base
// chunk before the checkpoint committed, and reads the memtable after the removal, would miss
// the key in both. So readers pin an epoch, a counter that Flushed increments:
//
//	epoch 7 readers: R1 R2        Flushed(upTo=50): pending{50, epoch 7}; epoch = 8
//	epoch 8 readers: R3           R3 only ever reads Base after it holds ≤ 50
//	R1, R2 close ─▶ no pin ≤ 7 ─▶ safe level = 50 ─▶ versions ≤ 50 leave the memtable
//
// Flushed never blocks: the removal runs when the last reader of an older epoch closes (inside
// its Close), or at a later GC or Flushed call. This is epoch-based reclamation (Fraser 2004;
// the same idea as RCU grace periods and Silo's epochs) applied to the memtable/Base handoff.
//
// Memtable-only validation: HasNewer and HasNewerInRange look only at the memtable. That is
// enough because Base holds versions <= GCWatermark <= the validating transaction's (still open)
// snapshot, and neither GC nor flush removal drops a version above the GC watermark.
//
// # Garbage collection
//
// GC keeps, for every key, every version > GCWatermark plus the newest version <= it (readers
// at ts >= watermark stop there), and drops the older ones. The watermark never passes
// DurableTS: a version may be dropped only when what supersedes it is durable. Otherwise a
// checkpoint — which writes only durable versions, the newest <= its ts per key — would find
// the key's dropped version gone, write an older one, and truncate the dropped version's log
// record; a crash that then lost the superseding version would leave the rest of the dropped
// version's transaction without it (a torn transaction; the kill -9 crash test found this).
// Two refinements:
//
//   - Versions <= the safe flushed level (Base holds them and no reader from before the
//     checkpoint is open) are dropped; a key with nothing left leaves the memtable.
//   - Over EmptyBase (an in-memory DB, which never checkpoints) a tombstone that is the newest
//     version <= the watermark is dropped with everything older: a miss falls through to an
//     empty Base and reads "not found" too. Over a real Base the tombstone stays until a
//     checkpoint has deleted the key from Base — dropping it earlier would resurrect the old
//     checkpointed value.
//
// GC edits chains under the B-tree's read lock, in chunks, so installs are delayed by at most
// one chunk; it unlinks only versions older than the one every reader stops at.
//
// # Invariants (tested in this package)
//
//  1. A reader at ts sees exactly the newest version <= ts of every key (memtable, else Base),
//     whatever GC, checkpoints and Flushed do concurrently (TestStressEpochFlush).
//  2. GCWatermark never exceeds an open snapshot's ts (TestGCWatermarkBelowSnapshots).
//  3. A memtable version is dropped only when no pinned reader could need it
//     (TestFlushedWaitsForOldReaders, TestStressEpochFlush).
//  4. ReadTS only moves forward and never passes a pending ts (TestOracleConcurrent).
//  5. DurableTS only moves forward, never passes ReadTS nor a ts that committed and is not
//     marked durable, and a failure stops it (TestDurableWatermark, TestFailDurable).
//  6. GC never drops a version unless a durable version supersedes it
//     (TestGCKeepsTheNewestDurableVersion).
//
// # References
//
//   - Badger, txn.go (oracle, read and commit marks) and y/watermark.go.
//   - S. Tu, W. Zheng, E. Kohler, B. Liskov, S. Madden: Speedy Transactions in Multicore
//     In-Memory Databases (Silo), SOSP 2013 — commit protocol, epochs, snapshots.
//   - P.-Å. Larson et al.: High-Performance Concurrency Control Mechanisms for Main-Memory
//     Databases (Hekaton), VLDB 2011; J. Böttcher et al.: Scalable Garbage Collection for
//     In-Memory MVCC Systems, VLDB 2019; Y. Wu et al.: An Empirical Evaluation of In-Memory
//     Multi-Version Concurrency Control, VLDB 2017 (version chains, GC).
//   - K. Fraser: Practical lock-freedom, 2004 (epoch-based reclamation).
//   - PostgreSQL: src/backend/utils/time/snapmgr.c and procarray.c (snapshots, xmin horizon as
//     the GC watermark).
package mvcc

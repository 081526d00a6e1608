// Package changefeed is txkv's change-stream hub: it turns the commits the engine publishes
// into ordered streams of durable events for Watch (MongoDB's change streams, etcd's watch,
// Badger's Subscribe). It knows nothing of transactions: the engine hands it each commit's
// writes (Publish) and its durable watermark; for a file database, a reader of the log's
// retained tail too. It never imports the engine (txn); it imports mvcc and wal for their
// types only.
//
// # The contract
//
// A watcher names a key prefix and a start version; it receives one Event per write of a
// committed transaction under the prefix, in commit-timestamp order, from that version on,
// with no gaps: every commit with a ts >= the start that wrote under the prefix is delivered,
// each write exactly once, and nothing that did not commit. The resume token is just a
// version: after Event e, resuming at e.Version+1 continues exactly where the stream stopped.
// A slow watcher never slows a commit down.
//
// # Invariants
//
//   - Only durable events. A record leaves "pending" only once its ts is at or below the
//     durable watermark (DurableTS): a consumer acts on what it receives, so nothing a crash
//     could still take back is ever delivered. If the log fails, pending records are dropped
//     and every watcher ends with the log's error: they will never be durable.
//   - Order without gaps. The ring receives records in ts order, and every committed ts
//     between the horizon and "released" is in it. This holds because the engine publishes a
//     commit before it marks its ts done (Install → Publish → Done), and the watermark passes
//     a ts only when every ts below it is done: committed (hence published) or aborted.
//   - Records are immutable once published: the ring, many watchers and the log catch-up
//     share them without copying; each Event gets its own copy of key and value.
//   - Publish never blocks on a watcher: one short critical section (a sorted insert,
//     usually at the end) and a non-blocking send to the sequencer.
//   - Lock order: the engine's locks → Hub.mu (Publish runs inside the engine's Commit).
//     Nothing blocking happens under Hub.mu: no I/O, no user code, only non-blocking sends.
//
// # Ordering: why records wait in "pending"
//
// Commit timestamps are taken in one order and commits finish in another: T5 may install
// and be done while T4 is still validating. Delivering T5 at once would break the order (T4
// would come later) or lose T4. And a commit is visible before it is durable (the commit
// protocol releases its locks before the fsync). The durable watermark answers both: every
// ts <= it is done and durable. So a single sequencer goroutine moves records from pending
// into the ring once their ts is <= the watermark: at that point every committed ts below
// them has been published too. (Published after Done instead, a commit could be done and
// below the watermark yet not in pending, and nothing could tell it from an abort.)
//
//	committers            Hub.mu                                      watchers (own goroutines)
//	──────────            ──────                                      ────────────────────────
//	T5 Publish ─┐   pending (sorted by ts)         ring (ts order, bounded)
//	T4 Publish ─┼─▶ [4 5 7] ──sequencer: ts <= DurableTS─▶ [.. 1 2 4 5] ◀── scan from cursor
//	T7 Publish ─┘             (WaitDurable for the       ▲          │      (batch of matches)
//	                           smallest pending ts)   horizon    released
//	                                                     │          │
//	                                                     │          └─▶ prefix index wakes
//	                                                     │              caught-up watchers
//	                        older records: the log's tail (file DBs: Tail.ReadTail)
//	                                       or ErrCompacted (in memory)
//
// # Watchers: pull, not push
//
// A watcher has no goroutine and no queue of its own. Its iterator runs in the consumer's
// goroutine and pulls batches: under Hub.mu it scans the ring from its cursor (the next ts
// it needs) and takes references to the matching records, then copies their events out and
// yields them with no lock held.
//
// What a slow subscriber sees: nothing is ever dropped from its stream, and nothing it does
// holds anything up. The ring is bounded (Config.RingEvents, Config.RingBytes) and evicts
// its oldest records whatever the watchers' cursors. A watcher whose cursor falls at or
// below the ring's horizon (the newest ts evicted) catches up from the log's retained tail,
// which holds every commit above the log's own horizon, in chunks, and then returns to the
// ring. If the log no longer holds what it needs (a checkpoint deleted it), or the database
// is in memory and has no log, the stream ends with wal.ErrCompacted; the consumer restarts
// from a state it reads afresh. A start version older than the ring gets the same.
//
// # Many idle watchers cost the commit path nothing per watcher
//
// A watcher that has scanned everything released is "caught up" and sleeps on its wake
// channel. The sequencer finds the watchers a record concerns through a prefix index
// (prefix → watchers, and the distinct prefix lengths in use): for each written key it
// looks up key[:n] for each length n, so its cost grows with the number of distinct prefix
// lengths, not with the number of watchers. It records in each matching caught-up watcher
// the ts of the first record released for it (firstMatch) and wakes it. A caught-up
// watcher that wakes jumps straight to firstMatch — every record released between its last
// scan and firstMatch was for other prefixes — so a watcher on a quiet prefix is never
// reported compacted because other keys churned through the ring.
//
// # References
//
// etcd's watchable store (server/storage/mvcc/watchable_store.go; mvcc/watchable_store.go
// in older releases) keeps two groups of watchers: "synced" ones, which are up to date and
// receive each write from the commit path (notify), and "unsynced" ones, which are behind
// and are caught up from the backend by syncWatchersLoop before they rejoin the synced
// group; a synced watcher whose channel is full becomes a "victim" retried later
// (syncVictimsLoop), and one whose start revision was compacted away gets a compaction
// response. Here the caught-up watchers play the synced group (the prefix index plays the
// watcherGroup's key map and interval tree), and a watcher behind the ring is unsynced and
// catches up from the log. The differences: watchers pull in their consumer's goroutine
// instead of being pushed to a channel, so there are no victims, and events are released
// only once durable.
package changefeed

// Package peers runs txkv's bench workloads — the bank transfer (10 and
// 10,000 accounts), inventory, the job queue, durable single-key commits
// with 1 and 64 committers, a hot counter (read-modify-write of one key by
// 2, 8 and 64 writers) and point reads (one read-only transaction per read)
// — on txkv and on other embedded Go stores, side
// by side in one process, so their throughput can be compared on the same
// machine at the same moment:
//
//	store        concurrency control                     durability knob
//	txkv         the strategy under test (best reported)  SyncAlways / SyncNone
//	bbolt        one writer (file lock), MVCC readers     NoSync
//	bbolt Batch  one writer; concurrent Updates coalesced SyncAlways / NoSync
//	             into one commit (waits up to 10ms)
//	Badger v4    optimistic SSI; ErrConflict retried      SyncWrites
//	BuntDB       one RWMutex held for the transaction     SyncPolicy Always / Never
//	SQLite       WAL, one writer (BEGIN IMMEDIATE),       synchronous FULL / OFF
//	             pooled WAL readers (modernc.org/sqlite)
//
// and two in-memory ceilings for the bank: a Go map under one mutex, and
// one mutex per account taken in index order — what the transfer costs
// with no store at all.
// BenchmarkRow also runs txkv in memory, with no log at all, on the bank
// rows (…/nosync/txkv-memory-<strategy>): beside txkv on a file without
// fsync it shows what the log costs per transfer.
//
// Method: each cell (row × store × durability) opens a fresh store in a
// temporary directory, loads the row, runs it for a fixed time from N
// goroutines, and checks the row's invariant (bank total conserved, stock +
// orders = initial, every job queued or done exactly once, every
// acknowledged key present). Repetitions are interleaved — A B C A B C —
// and the median is reported, because absolute rates drift by up to 2×
// between runs while ratios within one run hold to about ±10%.
//
// This is a nested module (its own go.mod, with a replace of the parent),
// so txkv's own go.mod stays free of the peers' dependencies; `go test
// ./...` at the repository root does not enter it. Run it with
//
//	cd bench/peers && go run ./cmd/peers    # the full comparison
//	cd bench/peers && go test ./...          # a smoke run of every store
package peers

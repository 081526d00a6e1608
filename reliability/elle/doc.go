// Package elle checks transaction histories for isolation anomalies, in
// the manner of Jepsen's Elle (Kingsbury & Alvaro, "Elle: Inferring
// Isolation Anomalies from Experimental Observations", VLDB 2020), over
// Adya's dependency graphs (Adya, "Weak Consistency", MIT PhD thesis, 1999).
//
// # The workload: list append with unique values
//
// Every key holds a list of ints. A transaction is a sequence of
// micro-operations: read(k) returns k's whole list; append(k, v) adds v to
// its end. Each value is appended to a key at most once in the whole
// history. That one rule makes a history self-explaining:
//
//   - who wrote what: value v of key k has exactly one writer;
//   - in which order: a read of [1 2 3] says the versions of k were
//     installed as 1, then 2, then 3 — a read reveals the whole prefix of
//     the version order, not just the latest value (a register would not);
//   - so the version order of k is its longest observed list, and every
//     other observation must be a prefix of it ("incompatible-order" if not).
//
// # From observations to a dependency graph
//
//	key x, order [1 2 3]:  T1 appended 1, T2 appended 2, T3 appended 3
//	T4 read x = [1 2]
//
//	   T1 --ww--> T2 --ww--> T3       ww: consecutive versions
//	               \          ^
//	                wr        rw      wr: T4 read the version T2 installed
//	                 v       /        rw: T4 read a version T3 overwrote
//	                   T4 --'
//
// Nodes are committed transactions (and transactions of unknown outcome
// whose writes someone observed). For each key, with order v1 < v2 < …:
// a ww edge joins the writers of consecutive versions; a wr edge joins the
// writer of the last value a transaction read to the reader; an rw edge
// joins a reader to the writer of the version after the one it read. A
// transaction's reads of a key are taken "externally": its own appends,
// which must appear at the end in order (else "internal"), are removed
// first. Aborted attempts never enter the graph; their values must never be
// read (G1a). A read ending with a value its writer later overwrote in the
// same transaction is an intermediate read (G1b).
//
// # Cycles and their classes
//
// A serializable history has an acyclic graph. Tarjan's algorithm finds the
// strongly connected components; each cyclic one is reported once, under
// the most severe class among its cycles, searched in this order:
//
//	G0       a cycle of ww edges only          (dirty write; forbidden by all)
//	G1c      ww and wr edges, at least one wr  (circular information flow)
//	G-single exactly one rw edge               (read skew; forbidden by SI)
//	G2-item  two or more rw edges              (write skew; allowed by SI)
//
// G0 and G1c are found as cycles within the ww and ww+wr subgraphs of the
// component; G-single by a breadth-first search over ww+wr edges from each
// rw target back to an rw source; what remains has only cycles with two or
// more rw edges. Snapshot isolation forbids every class but G2-item, which
// is how a test tells Snapshot from Serializable.
//
// # Real time (optional)
//
// CheckOptions.RealTime adds an rt edge Ti -> Tj whenever committed Ti
// ended before Tj started (Txn.Start/End, any clock that orders events),
// transitively reduced with a sweep over a "frontier" of finished
// transactions, so the edges stay O(n · concurrency). Components that are
// cyclic only thanks to rt edges are reported as G0-realtime … G2-item-
// realtime: serializable, but not strictly serializable — a transaction
// missed a commit that had finished before it began.
//
// What this checker does not do: it does not infer version orders from
// writes nobody read — such writes add no edges, which can hide an anomaly
// but never invents one.
package elle

// Package txkvhttp is a live view of a txkv database, for people learning
// how locking and optimistic concurrency behave and for operators asking
// why a service is slow. Mount it like net/http/pprof:
//
//	mux := http.NewServeMux()
//	mux.Handle("/debug/txkv/", http.StripPrefix("/debug/txkv", txkvhttp.Handler(db)))
//	go http.ListenAndServe("localhost:6060", mux)
//
// and open http://localhost:6060/debug/txkv/. (Listen binds localhost when
// the address has no host, as ":6060".)
//
// # What the page shows
//
// One page, rendered on the server (html/template), kept live by a little
// plain JavaScript that receives server-sent events; no build step.
//
//	┌ counters: commits, aborts, conflicts, deadlocks, lock waits, … ─────────┐
//	├ lock table ───────────────────────┬ wait-for graph (SVG) ───────────────┤
//	│ "seat/12A"  txn 1 X   │ txn 2 X   │   txn 1 ◀── txn 2 ◀─ ─ txn 3        │
//	│             (holders) │ txn 3 X   │   txn 4 ⇄ txn 5 ✗ (red: the cycle)  │
//	├ recent deadlocks ─────────────────┼ strategies: commits/aborts per s ───┤
//	│ #1 victim txn 5: cycle 5→4→5 …    │ ▁▂▅▇ pessimistic  ▁▁▂ optimistic …  │
//	├ hot keys ─────────────────────────┼ advice (db.Advice) ─────────────────┤
//	└───────────────────────────────────┴─────────────────────────────────────┘
//
// The panels:
//
//   - The lock table (db.Locks) grouped by key or range: the holders, and
//     the waiters in queue order, each with its mode (S or X), its label
//     (TxOptions.Label) and how long it has waited or held. txkv times
//     waits only; a lock granted without a wait is aged from when the view
//     first saw it ("≥").
//   - The wait-for graph (db.WaitForGraph) on a circle: an arrow from each
//     waiter to what it waits for, solid to a holder, dashed to a request
//     queued ahead. The latest deadlock's cycle is drawn over it in red —
//     broken already, its victim aborted — with the victim filled red.
//   - Recent deadlocks: the cycle (who wants what, held by whom), the keys,
//     the victim, when. They come from db.RecentDeadlocks (the last 32),
//     read ten times a second while someone watches: every deadlock is
//     listed unless a storm passes 320 a second (then counted as Missed).
//   - Per strategy (Stats.ByStrategy), commits and aborts per second and
//     the conflict rate over the last five minutes, with the DB's windowed
//     conflict rate and the state of Adaptive's and Hybrid's steering.
//   - The hot keys (db.HotKeys) and db.Advice() with its reasons.
//
// # Endpoints
//
// Relative to the mount point; GET and HEAD only (anything else is 405):
// nothing here changes data or locks.
//
//	/                     the page
//	/events               text/event-stream: "frame" events, each every panel rendered
//	/api/frame.json       one frame (the page polls it where EventSource is missing)
//	/api/snapshot.json    Snapshot: everything below in one document
//	/api/locks.json       LockTable
//	/api/graph.json       Graph (nodes, edges, the latest deadlock drawn)
//	/api/deadlocks.json   DeadlockList
//	/api/strategies.json  Strategies (the history behind the charts)
//	/api/hotkeys.json     []HotKey
//	/api/advice.json      Advice
//	/api/stats.json       txkv.Stats as is
//	/graph.dot            the live wait-for graph in Graphviz DOT (db.WriteWaitForGraph)
//	/graph.svg            the graph as the page draws it, standalone
//
// The types of this package are the JSON documents; their fields' json
// names are the API. Keys are bytes: Target.Key is exact (base64), and
// Target.Text is the quoted form txkv's error messages use, always valid
// UTF-8. On the page every key, label and reason is escaped by
// html/template or, in the SVG, by esc; the page's Content-Security-Policy
// allows only its own script besides.
//
// # Cost
//
// Nothing runs until a client asks: a Server starts no goroutine and reads
// nothing of the DB by itself. Each request reads a snapshot (Stats, Locks,
// WaitForGraph, HotKeys, Advice), shared by all requests within 200 ms; an
// open event stream asks for one every 500 ms, and samples the latest
// deadlock (an atomic load) every 100 ms. The history is bounded:
// HistoryPoints points per strategy, MaxDeadlocks deadlocks, MaxTargets
// keys or ranges per snapshot, and first-seen times for at most 10,000
// locks. When the last client leaves, nothing runs again.
//
// A Server shows one DB at a time; SetDB moves it to another (txkvbench
// -serve does so between runs) and Close ends the event streams, for an
// http.Server's RegisterOnShutdown.
package txkvhttp

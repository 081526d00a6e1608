package txkvhttp

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/txkv/txkv"
)

// The bounds of what a Server keeps: its memory does not grow with time or
// with the size of the lock table beyond these.
const (
	// MaxTargets is how many locked keys or ranges a snapshot lists
	// (targets with waiters first); LockTable.Omitted counts the rest.
	MaxTargets = 200
	// MaxDeadlocks is how many recent deadlocks are kept.
	MaxDeadlocks = 20
	// HistoryPoints is how many points the per-strategy history keeps, one
	// per SampleInterval: five minutes.
	HistoryPoints = 300
	// SampleInterval is the spacing of the history's points.
	SampleInterval = time.Second
	// MaxHotKeys is how many of db.HotKeys a snapshot shows.
	MaxHotKeys = 15

	// refreshEvery is the least time between two snapshots: requests
	// within it share one (the DB is read at most this often, however many
	// clients watch). The event stream polls at this pace, which is also
	// how often the latest deadlock is sampled.
	refreshEvery = 200 * time.Millisecond
	// maxAged bounds the first-seen times kept for locks granted without
	// a wait (their ages): beyond it, new ones get none.
	maxAged = 10000
)

// collector reads the DB when someone asks, and keeps the little history
// the page draws. It owns no goroutine: the requests drive it, so when
// nobody looks it does nothing at all and costs nothing but its memory.
type collector struct {
	now func() time.Time // tests replace it

	// mu protects every field of the struct below: the DB shown and all
	// that was collected from it. A snapshot holds it while it reads the
	// DB (Stats, Locks, WaitForGraph, HotKeys, Advice: none calls back).
	mu struct {
		sync.Mutex
		db      *txkv.DB
		caption string

		samples    []sample    // oldest first, at most HistoryPoints
		marks      []Mark      // SetDB changes, pruned with the samples
		prev       *txkv.Stats // the last sample's counters; nil: the next sample is a baseline
		lastSample time.Time

		watching   bool       // the deadlock counters below are initialised
		lastSeq    uint64     // the DeadlockRecord.Seq last captured
		missed     uint64     // deadlocks since watching began that the DB no longer kept
		deadlocks  []captured // newest first, at most MaxDeadlocks
		seq        uint64
		firstSeen  map[lockID]time.Time
		snap       *Snapshot
		snapAt     time.Time
		frameCache *frame // rendered from snap (page.go)
	}
}

// sample is one point of the history: rates over the interval before t.
type sample struct {
	t            time.Time
	rates        map[string]Rates
	conflictRate float64
}

// captured is a deadlock with the DB it happened in (only the current DB's
// latest deadlock is drawn on its graph: IDs restart with each DB).
type captured struct {
	Deadlock
	db *txkv.DB
}

// lockID names one row of the lock table across snapshots.
type lockID struct {
	tx       uint64
	key, end string
	isRange  bool
	mode     txkv.LockMode
	granted  bool
}

func newCollector(db *txkv.DB, caption string) *collector {
	c := &collector{now: time.Now}
	c.mu.db, c.mu.caption = db, caption
	c.mu.firstSeen = make(map[lockID]time.Time)
	return c
}

// setDB switches to another DB: the history goes on (with a mark), the
// counters' baseline and the deadlock sampling start again.
func (c *collector) setDB(db *txkv.DB, caption string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.db, c.mu.caption = db, caption
	c.mu.prev, c.mu.watching, c.mu.lastSeq, c.mu.missed = nil, false, 0, 0
	c.mu.firstSeen = make(map[lockID]time.Time)
	c.mu.snap, c.mu.frameCache = nil, nil
	c.mu.marks = append(c.mu.marks, Mark{Time: c.now(), Caption: caption})
}

// snapshot returns the current snapshot, reading the DB unless the last
// one is younger than refreshEvery.
func (c *collector) snapshot() *Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snapshotLocked()
}

func (c *collector) snapshotLocked() *Snapshot {
	now := c.now()
	if c.mu.snap != nil && now.Sub(c.mu.snapAt) < refreshEvery && !now.Before(c.mu.snapAt) {
		return c.mu.snap
	}
	db := c.mu.db
	s := &Snapshot{Time: now, Caption: c.mu.caption, Stats: db.Stats()}
	c.sampleLocked(now, &s.Stats)
	c.pollLocked()
	locks := db.Locks()
	s.Locks = c.lockTableLocked(now, locks)
	s.Graph = c.graphLocked(now, db, locks)
	s.Deadlocks = c.deadlockListLocked(s.Stats.Deadlocks)
	s.Strategies = c.strategiesLocked(&s.Stats)
	s.HotKeys = hotKeys(db.HotKeys(MaxHotKeys))
	a := db.Advice()
	s.Advice = Advice{Strategy: a.Strategy.String(), Reasons: a.Reasons}
	c.mu.snap, c.mu.snapAt, c.mu.frameCache = s, now, nil
	return s
}

// sampleLocked adds a history point when SampleInterval has passed.
func (c *collector) sampleLocked(now time.Time, st *txkv.Stats) {
	if c.mu.prev != nil && now.Sub(c.mu.lastSample) < SampleInterval {
		return
	}
	prev, since := c.mu.prev, c.mu.lastSample
	cur := *st
	c.mu.prev, c.mu.lastSample = &cur, now
	if prev == nil || !now.After(since) {
		return // a baseline: rates need two readings
	}
	secs := now.Sub(since).Seconds()
	smp := sample{t: now, rates: make(map[string]Rates, len(st.ByStrategy)), conflictRate: st.ConflictRate}
	for name, tot := range st.ByStrategy {
		was := prev.ByStrategy[name]
		dc, da := float64(tot.Commits-min(was.Commits, tot.Commits)), float64(tot.Aborts-min(was.Aborts, tot.Aborts))
		dx := float64(tot.Conflicts - min(was.Conflicts, tot.Conflicts))
		r := Rates{Time: now, Commits: dc / secs, Aborts: da / secs}
		if dc+da > 0 {
			r.AbortRate, r.ConflictRate = da/(dc+da), dx/(dc+da)
		}
		smp.rates[name] = r
	}
	c.mu.samples = append(c.mu.samples, smp)
	if n := len(c.mu.samples); n > HistoryPoints {
		c.mu.samples = slices.Delete(c.mu.samples, 0, n-HistoryPoints)
	}
	oldest := c.mu.samples[0].t
	c.mu.marks = slices.DeleteFunc(c.mu.marks, func(m Mark) bool { return m.Time.Before(oldest.Add(-SampleInterval)) })
}

// strategiesLocked builds the per-strategy series from the samples.
func (c *collector) strategiesLocked(st *txkv.Stats) Strategies {
	out := Strategies{IntervalMS: SampleInterval.Milliseconds(), AdaptiveMode: st.AdaptiveMode,
		HybridStartsPessimistic: st.HybridStartsPessimistic, Marks: slices.Clone(c.mu.marks)}
	for _, name := range c.strategyNamesLocked(st.ByStrategy) {
		tot := st.ByStrategy[name]
		ser := StrategySeries{Strategy: name, Commits: tot.Commits, Aborts: tot.Aborts, Points: []Rates{}}
		for _, smp := range c.mu.samples {
			if r, ok := smp.rates[name]; ok {
				ser.Points = append(ser.Points, r)
			}
		}
		out.Series = append(out.Series, ser)
	}
	out.ConflictRate = make([]Point, 0, len(c.mu.samples))
	for _, smp := range c.mu.samples {
		out.ConflictRate = append(out.ConflictRate, Point{Time: smp.t, Value: smp.conflictRate})
	}
	return out
}

// strategyNamesLocked lists the strategies that ran in the current DB or
// within the history (an earlier DB, before SetDB), in the guide's order.
func (c *collector) strategyNamesLocked(by map[string]txkv.StrategyStats) []string {
	seen := make(map[string]bool)
	for name, s := range by {
		seen[name] = seen[name] || s.Commits+s.Aborts > 0
	}
	for _, smp := range c.mu.samples {
		for name := range smp.rates {
			seen[name] = seen[name] || smp.rates[name].Commits+smp.rates[name].Aborts > 0
		}
	}
	var names []string
	for name, ran := range seen {
		if ran {
			names = append(names, name)
		}
	}
	return strategyOrder(names)
}

// strategyOrder sorts strategy names in the guide's order, others after.
func strategyOrder(names []string) []string {
	rank := map[string]int{"pessimistic": 0, "optimistic": 1, "hybrid": 2, "adaptive": 3}
	slices.SortFunc(names, func(a, b string) int {
		ra, oka := rank[a]
		rb, okb := rank[b]
		if oka != okb {
			return boolOrder(!oka, !okb)
		}
		if c := cmp.Compare(ra, rb); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return names
}

func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func hotKeys(hs []txkv.HotKey) []HotKey {
	out := make([]HotKey, 0, len(hs))
	for _, h := range hs {
		out = append(out, HotKey{Target: newTarget(h.Key, h.End, h.Range),
			Conflicts: h.Conflicts, LockWaits: h.LockWaits, Deadlocks: h.Deadlocks,
			Temperature: h.Temperature, AdaptiveLocks: h.AdaptiveLocks})
	}
	return out
}

// currentDB is the DB shown now.
func (c *collector) currentDB() *txkv.DB {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.db
}

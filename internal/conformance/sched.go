package conformance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// Sched runs explicit transactions step by step in a fixed interleaving, the
// way PostgreSQL's isolation tester runs a permutation of its spec: each
// Session is a goroutine that executes its steps in order; after issuing a
// step the driver waits until the Session has finished everything queued
// or is blocked in a lock wait (observed through db.Locks(), never by
// sleeping). A step queued behind a blocked step runs when it unblocks. A
// Session ends at its first error or its commit; later steps are skipped.
//
//	sc := NewSched(t, db)
//	t1, t2 := sc.Begin("T1", opts), sc.Begin("T2", opts)
//	t1.Do("read", ...); t2.Do("read", ...); t1.Commit(); t2.Commit()
//	sc.Finish()            // waits for blocked steps, rolls back the rest
//	t1.Err("commit"), t2.BlockedIn("write"), sc.trace
type Sched struct {
	t        *testing.T
	db       *txkv.DB
	sessions []*Session
	trace    []string
	finished bool
}

type Session struct {
	sc      *Sched
	name    string
	tx      *txkv.Tx
	in      chan schedStep
	out     chan schedResult
	pending []string // names of steps issued and not yet reported, in order
	results map[string]schedResult
	blocked map[string]bool // steps observed waiting for a lock
	closed  bool
}

type schedStep struct {
	name string
	f    func(*txkv.Tx) error
}

type schedResult struct {
	name    string
	err     error
	skipped bool
}

// NewSched returns a scheduler over db.
func NewSched(t *testing.T, db *txkv.DB) *Sched {
	sc := &Sched{t: t, db: db}
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("schedule trace:\n  %s", strings.Join(sc.trace, "\n  "))
		}
	})
	return sc
}

// Logf adds a line to the schedule trace (logged when the test fails).
func (sc *Sched) Logf(format string, args ...any) {
	sc.trace = append(sc.trace, fmt.Sprintf(format, args...))
}

// Begin starts a Session with a transaction begun with opts.
func (sc *Sched) Begin(name string, opts *txkv.TxOptions) *Session {
	sc.t.Helper()
	tx := MustBegin(sc.t, sc.db, opts)
	s := &Session{
		sc: sc, name: name, tx: tx,
		in:      make(chan schedStep, 64),
		out:     make(chan schedResult, 64),
		results: make(map[string]schedResult),
		blocked: make(map[string]bool),
	}
	sc.sessions = append(sc.sessions, s)
	sc.Logf("%s: begin (tx %d, %v)", name, tx.ID(), tx.Strategy())
	go s.run()
	// If the test fails half way, stop the goroutine; the DB's Close
	// (registered earlier, so run later) ends any lock wait it is in.
	sc.t.Cleanup(s.closeIn)
	return s
}

func (s *Session) run() {
	ended := false
	for st := range s.in {
		if ended {
			s.out <- schedResult{name: st.name, skipped: true}
			continue
		}
		err := st.f(s.tx)
		ended = err != nil || st.name == "commit"
		s.out <- schedResult{name: st.name, err: err}
	}
}

func (s *Session) closeIn() {
	if !s.closed {
		s.closed = true
		close(s.in)
	}
}

// Do issues one step and waits until the Session is idle or blocked.
func (s *Session) Do(name string, f func(*txkv.Tx) error) {
	s.sc.t.Helper()
	if _, dup := s.results[name]; dup || contains(s.pending, name) {
		s.sc.t.Fatalf("%s: step name %q used twice", s.name, name)
	}
	s.pending = append(s.pending, name)
	s.in <- schedStep{name: name, f: f}
	s.settle()
}

// Commit issues the step "commit".
func (s *Session) Commit() { s.Do("commit", (*txkv.Tx).Commit) }

// settle waits until every step of s has reported, or s is blocked.
func (s *Session) settle() {
	s.sc.t.Helper()
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()
	for {
		s.sc.poll()
		if len(s.pending) == 0 {
			return
		}
		if IsWaiting(s.sc.db, s.tx.ID()) {
			if !s.blocked[s.pending[0]] {
				s.blocked[s.pending[0]] = true
				s.sc.Logf("%s: %s blocks", s.name, s.pending[0])
			}
			return
		}
		if time.Now().After(deadline) {
			s.sc.t.Fatalf("%s: step %s neither finished nor blocked on a lock", s.name, s.pending[0])
		}
		<-tick.C
	}
}

// poll records every result that has arrived, in any Session.
func (sc *Sched) poll() {
	for _, s := range sc.sessions {
		for drained := false; !drained; {
			select {
			case r := <-s.out:
				s.record(r)
			default:
				drained = true
			}
		}
	}
}

func (s *Session) record(r schedResult) {
	if len(s.pending) == 0 || s.pending[0] != r.name {
		s.sc.t.Fatalf("%s: result for %s, expected %v", s.name, r.name, s.pending)
	}
	s.pending = s.pending[1:]
	s.results[r.name] = r
	switch {
	case r.skipped:
		s.sc.Logf("%s: %s skipped (Session ended)", s.name, r.name)
	case r.err != nil:
		s.sc.Logf("%s: %s → %v", s.name, r.name, r.err)
	default:
		s.sc.Logf("%s: %s ✓", s.name, r.name)
	}
}

// Finish waits for every blocked step to end (a hang fails the test) and
// rolls back sessions that did not commit.
func (sc *Sched) Finish() {
	sc.t.Helper()
	sc.finished = true
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()
	for _, s := range sc.sessions {
		s.closeIn()
		for len(s.pending) > 0 {
			sc.poll()
			if len(s.pending) == 0 {
				break
			}
			if time.Now().After(deadline) {
				sc.t.Fatalf("%s: %s still blocked at the end of the schedule (a hang)", s.name, s.pending[0])
			}
			<-tick.C
		}
		if !s.Committed() {
			_ = s.tx.Rollback()
		}
	}
}

// Err returns the error of step name (nil if it succeeded or was skipped).
func (s *Session) Err(name string) error { return s.results[name].err }

// Ran reports whether step name ran and succeeded.
func (s *Session) Ran(name string) bool {
	r, ok := s.results[name]
	return ok && !r.skipped && r.err == nil
}

// Committed reports whether the commit step ran and succeeded.
func (s *Session) Committed() bool { return s.Ran("commit") }

// Failure returns the error that ended the Session, if any.
func (s *Session) Failure() error {
	for _, r := range s.results {
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

// BlockedIn reports whether step name was seen waiting for a lock.
func (s *Session) BlockedIn(name string) bool { return s.blocked[name] }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Name returns the session's name.
func (s *Session) Name() string { return s.name }

// Tx returns the session's transaction.
func (s *Session) Tx() *txkv.Tx { return s.tx }

// Result is the outcome of one step: its error, or Skipped when the session
// had ended before it.
type Result struct {
	Err     error
	Skipped bool
}

// Ended reports whether step name has reported its result.
func (s *Session) Ended(name string) bool {
	s.sc.poll()
	_, ok := s.results[name]
	return ok
}

// Await waits until step name of s has ended (typically after it blocked and
// something released it) and returns its result.
func (s *Session) Await(name string) Result {
	s.sc.t.Helper()
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()
	for {
		s.sc.poll()
		if r, ok := s.results[name]; ok {
			return Result{Err: r.err, Skipped: r.skipped}
		}
		if time.Now().After(deadline) {
			s.sc.t.Fatalf("%s: step %s did not end (a hang)", s.name, name)
		}
		<-tick.C
	}
}

package txkv_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// sched runs explicit transactions step by step in a fixed interleaving, the
// way PostgreSQL's isolation tester runs a permutation of its spec: each
// session is a goroutine that executes its steps in order; after issuing a
// step the driver waits until the session has finished everything queued
// or is blocked in a lock wait (observed through db.Locks(), never by
// sleeping). A step queued behind a blocked step runs when it unblocks. A
// session ends at its first error or its commit; later steps are skipped.
//
//	sc := newSched(t, db)
//	t1, t2 := sc.begin("T1", opts), sc.begin("T2", opts)
//	t1.do("read", ...); t2.do("read", ...); t1.commit(); t2.commit()
//	sc.finish()            // waits for blocked steps, rolls back the rest
//	t1.err("commit"), t2.blockedIn("write"), sc.trace
type sched struct {
	t        *testing.T
	db       *txkv.DB
	sessions []*session
	trace    []string
	finished bool
}

type session struct {
	sc      *sched
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

func newSched(t *testing.T, db *txkv.DB) *sched {
	sc := &sched{t: t, db: db}
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("schedule trace:\n  %s", strings.Join(sc.trace, "\n  "))
		}
	})
	return sc
}

func (sc *sched) logf(format string, args ...any) {
	sc.trace = append(sc.trace, fmt.Sprintf(format, args...))
}

// begin starts a session with a transaction begun with opts.
func (sc *sched) begin(name string, opts *txkv.TxOptions) *session {
	sc.t.Helper()
	tx := mustBegin(sc.t, sc.db, opts)
	s := &session{
		sc: sc, name: name, tx: tx,
		in:      make(chan schedStep, 64),
		out:     make(chan schedResult, 64),
		results: make(map[string]schedResult),
		blocked: make(map[string]bool),
	}
	sc.sessions = append(sc.sessions, s)
	sc.logf("%s: begin (tx %d, %v)", name, tx.ID(), tx.Strategy())
	go s.run()
	// If the test fails half way, stop the goroutine; the DB's Close
	// (registered earlier, so run later) ends any lock wait it is in.
	sc.t.Cleanup(s.closeIn)
	return s
}

func (s *session) run() {
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

func (s *session) closeIn() {
	if !s.closed {
		s.closed = true
		close(s.in)
	}
}

// do issues one step and waits until the session is idle or blocked.
func (s *session) do(name string, f func(*txkv.Tx) error) {
	s.sc.t.Helper()
	if _, dup := s.results[name]; dup || contains(s.pending, name) {
		s.sc.t.Fatalf("%s: step name %q used twice", s.name, name)
	}
	s.pending = append(s.pending, name)
	s.in <- schedStep{name: name, f: f}
	s.settle()
}

func (s *session) commit() { s.do("commit", (*txkv.Tx).Commit) }

// settle waits until every step of s has reported, or s is blocked.
func (s *session) settle() {
	s.sc.t.Helper()
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()
	for {
		s.sc.poll()
		if len(s.pending) == 0 {
			return
		}
		if isWaiting(s.sc.db, s.tx.ID()) {
			if !s.blocked[s.pending[0]] {
				s.blocked[s.pending[0]] = true
				s.sc.logf("%s: %s blocks", s.name, s.pending[0])
			}
			return
		}
		if time.Now().After(deadline) {
			s.sc.t.Fatalf("%s: step %s neither finished nor blocked on a lock", s.name, s.pending[0])
		}
		<-tick.C
	}
}

// poll records every result that has arrived, in any session.
func (sc *sched) poll() {
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

func (s *session) record(r schedResult) {
	if len(s.pending) == 0 || s.pending[0] != r.name {
		s.sc.t.Fatalf("%s: result for %s, expected %v", s.name, r.name, s.pending)
	}
	s.pending = s.pending[1:]
	s.results[r.name] = r
	switch {
	case r.skipped:
		s.sc.logf("%s: %s skipped (session ended)", s.name, r.name)
	case r.err != nil:
		s.sc.logf("%s: %s → %v", s.name, r.name, r.err)
	default:
		s.sc.logf("%s: %s ✓", s.name, r.name)
	}
}

// finish waits for every blocked step to end (a hang fails the test) and
// rolls back sessions that did not commit.
func (sc *sched) finish() {
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
		if !s.committed() {
			_ = s.tx.Rollback()
		}
	}
}

// err returns the error of step name (nil if it succeeded or was skipped).
func (s *session) err(name string) error { return s.results[name].err }

// ran reports whether step name ran and succeeded.
func (s *session) ran(name string) bool {
	r, ok := s.results[name]
	return ok && !r.skipped && r.err == nil
}

func (s *session) committed() bool { return s.ran("commit") }

// failure returns the error that ended the session, if any.
func (s *session) failure() error {
	for _, r := range s.results {
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

func (s *session) blockedIn(name string) bool { return s.blocked[name] }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

package txkv_test

import (
	"testing"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/internal/conformance"
)

// sched runs explicit transactions step by step in a fixed interleaving:
// the root tests' names for conformance.Sched (see there), which the
// conformance suite shares with every engine.
//
//	sc := newSched(t, db)
//	t1, t2 := sc.begin("T1", opts), sc.begin("T2", opts)
//	t1.do("read", ...); t2.do("read", ...); t1.commit(); t2.commit()
//	sc.finish()            // waits for blocked steps, rolls back the rest
//	t1.err("commit"), t2.blockedIn("write")
type sched struct {
	*conformance.Sched
	t  *testing.T
	db *txkv.DB
}

type session struct {
	*conformance.Session
	sc   *sched
	name string
	tx   *txkv.Tx
}

func newSched(t *testing.T, db *txkv.DB) *sched {
	return &sched{Sched: conformance.NewSched(t, db), t: t, db: db}
}

// begin starts a session with a transaction begun with opts.
func (sc *sched) begin(name string, opts *txkv.TxOptions) *session {
	s := sc.Begin(name, opts)
	return &session{Session: s, sc: sc, name: s.Name(), tx: s.Tx()}
}

func (sc *sched) finish()                         { sc.Finish() }
func (sc *sched) logf(format string, args ...any) { sc.Logf(format, args...) }

func (s *session) do(name string, f func(*txkv.Tx) error) { s.Do(name, f) }
func (s *session) commit()                                { s.Commit() }
func (s *session) err(name string) error                  { return s.Err(name) }
func (s *session) committed() bool                        { return s.Committed() }
func (s *session) failure() error                         { return s.Failure() }
func (s *session) blockedIn(name string) bool             { return s.BlockedIn(name) }

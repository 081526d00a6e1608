// Package conformance is one test suite for every txkv engine: the anomaly
// suite (lost update, dirty read and write, read skew, fuzzy read, write
// skew over points and ranges, phantom insert and delete), the bank, the
// Elle-style list-append history check and the porcupine linearizability
// check, each behind an "open a DB" parameter, in the shape of etcd's
// testKVRange(t, f).
//
// A Target says how to open a fresh, empty DB of the engine under test and
// which strategies it supports; each entry point runs its cases over the
// target's modes (strategy × isolation):
//
//	tg := conformance.Target{Open: func(t testing.TB) *txkv.DB { … }}
//	func TestLostUpdate(t *testing.T) { conformance.LostUpdateInterleaved(t, tg) }
//
// The root package runs it on the local engine, the nested module etcdkv on
// etcd. Deterministic interleavings use Sched, which drives explicit
// transactions step by step and observes lock waits through DB.Locks — never
// by sleeping — so a Snapshot case shows write skew actually happening.
//
// Expected outcomes are per mode, not per engine: an engine passes only if
// it prevents exactly what the local engine prevents and lets Snapshot's
// write skew happen.
package conformance

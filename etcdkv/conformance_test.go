package etcdkv_test

import (
	"testing"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/internal/conformance"
)

// The conformance suite on etcd: the modes etcdkv supports (Optimistic, at
// Serializable and Snapshot), sized down for round trips. On three members
// (TXKV_ETCD_MEMBERS=3) each test's DB is 4 handles spread over the
// members (openConformance), so its concurrent transactions run through
// different members.
var target = conformance.Target{
	Open:       openConformance,
	Strategies: []txkv.Strategy{txkv.Optimistic},
	Scale:      5,
}

func TestLostUpdateInterleaved(t *testing.T)  { conformance.LostUpdateInterleaved(t, target) }
func TestLostUpdateConcurrent(t *testing.T)   { conformance.LostUpdateConcurrent(t, target) }
func TestWriteSkewPointReads(t *testing.T)    { conformance.WriteSkewPointReads(t, target) }
func TestWriteSkewRangeReads(t *testing.T)    { conformance.WriteSkewRangeReads(t, target) }
func TestWriteSkewPhantomInsert(t *testing.T) { conformance.WriteSkewPhantomInsert(t, target) }
func TestWriteSkewConcurrentSerializable(t *testing.T) {
	conformance.WriteSkewConcurrentSerializable(t, target)
}
func TestSimpleWriteSkew(t *testing.T) { conformance.SimpleWriteSkew(t, target) }
func TestSimpleWriteSkewSerialOrders(t *testing.T) {
	conformance.SimpleWriteSkewSerialOrders(t, target)
}
func TestPhantom(t *testing.T)           { conformance.Phantom(t, target) }
func TestDirtyWrite(t *testing.T)        { conformance.DirtyWrite(t, target) }
func TestDirtyRead(t *testing.T)         { conformance.DirtyRead(t, target) }
func TestReadSkew(t *testing.T)          { conformance.ReadSkew(t, target) }
func TestNonRepeatableRead(t *testing.T) { conformance.NonRepeatableRead(t, target) }
func TestBank(t *testing.T)              { conformance.Bank(t, target) }

func TestElleSerializable(t *testing.T) { conformance.ElleSerializable(t, target, 300, 1) }
func TestElleSnapshot(t *testing.T)     { conformance.ElleSnapshot(t, target, 300, 1) }

// TestLinearizable: Get, Put, CompareAndSwap and Increment over 4 handles
// of one database are linearizable.
func TestLinearizable(t *testing.T) { conformance.Linearizable(t, openN(t, 4), 1, 60) }

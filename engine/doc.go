// Package engine is the seam under txkv's public API: the interfaces a
// *txkv.DB and a *txkv.Tx run over when the database is not the local,
// in-process engine (package txn).
//
// # Two engines, one API
//
//	*txkv.DB / *txkv.Tx   (root package: the API users write against)
//	       |                         |
//	  local engine              engine.Engine / engine.Tx
//	  (*txn.DB, *txn.Tx,        (any other engine, e.g. the nested
//	   called directly)          module etcdkv, over etcd)
//
// The local engine is called directly — a DB holds a *txn.DB and a nil
// Engine — so its fast paths (a point read, a recycled View transaction) pay
// one nil check and no interface dispatch. A DB made by txkv.OpenEngine
// holds an Engine and calls it for everything. engine.Tx is exactly the
// method set of *txn.Tx (a compile-time assertion checks it), so a
// transaction means the same thing on either engine: the conformance suite
// (internal/conformance) runs against both.
//
// An engine reports what it cannot do with an error wrapping
// ErrNotSupported that names the operation — never by silently doing
// something weaker. Optional capabilities (lock tables, deadlock reports,
// hot keys) are separate interfaces, found by type assertion.
//
// Lock options are functions over an unexported struct of package txn; an
// engine decodes them with txn.ResolveLockOptions.
package engine

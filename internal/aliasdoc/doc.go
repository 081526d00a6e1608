// Package aliasdoc keeps the documentation of the root package's type
// aliases complete. The root package re-exports the engine's types as
// aliases (type TxOptions = txn.TxOptions), and `go doc txkv.TxOptions` shows
// an alias's own comment only — never the fields of the struct it names.
// So every alias of a struct type carries, after its hand-written first
// paragraphs, a generated block listing the struct's exported fields with
// their comments:
//
//	// TxOptions are per-transaction options; zero fields inherit the DB's.
//	//
//	// Fields (txn.TxOptions):
//	//
//	//	Strategy  Strategy
//	//	Label     string // shown in Locks(), deadlock reports and Stats
//	type TxOptions = txn.TxOptions
//
// Rewrite regenerates those blocks in place (go generate in the root
// package); the root's tests call it in check mode, so a field added below
// without regenerating fails the build's tests rather than going unseen.
package aliasdoc

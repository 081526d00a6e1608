// Package invariants switches on the engine's expensive self-checks, as
// pebble's internal/invariants does: code asks `if invariants.Enabled { … }`
// and the compiler drops the block from normal builds. Tests run with the
// checks on under the build tag txkv_invariants:
//
//	go test -tags txkv_invariants ./...
//
// A violated invariant panics: it is a bug in txkv, never a user error.
package invariants

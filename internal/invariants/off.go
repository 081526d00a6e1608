//go:build !txkv_invariants

package invariants

// Enabled is true in builds with the txkv_invariants tag.
const Enabled = false

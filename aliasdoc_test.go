package txkv_test

import (
	"testing"

	"github.com/txkv/txkv/internal/aliasdoc"
)

// The doc comment of every alias of a struct type lists the struct's
// exported fields (go doc shows an alias's comment, never the fields of
// the type it names). A field added in txn, lockmgr or wal without
// `go generate .` fails here.
func TestAliasDocsListFields(t *testing.T) {
	stale, err := aliasdoc.Rewrite(".", "github.com/txkv/txkv", ".", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) > 0 {
		t.Fatalf("alias docs out of date in %v: run go generate . (go run ./internal/aliasdoc/cmd/aliasdoc)", stale)
	}
}

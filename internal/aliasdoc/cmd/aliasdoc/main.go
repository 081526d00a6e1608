// Command aliasdoc regenerates the field lists in the doc comments of the
// root package's type aliases (see package aliasdoc). Run it from the
// module root: go generate . (or go run ./internal/aliasdoc/cmd/aliasdoc).
package main

import (
	"fmt"
	"os"

	"github.com/txkv/txkv/internal/aliasdoc"
)

func main() {
	changed, err := aliasdoc.Rewrite(".", "github.com/txkv/txkv", ".", true)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, f := range changed {
		fmt.Println("aliasdoc: rewrote", f)
	}
}

// Package testenv reads the environment variables txkv's tests take: the
// seed that replays a randomized test, and the sizes that lengthen a long
// one. One place, so every test prints "replay with NAME=N" the same way.
package testenv

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// Seed returns the seed in the environment variable name, or a fresh random
// one, and logs how to replay the run.
func Seed(t testing.TB, name string) uint64 {
	t.Helper()
	seed := rand.Uint64()
	if s := os.Getenv(name); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want an unsigned integer: %v", name, s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with %s=%d)", seed, name, seed)
	return seed
}

// Int returns the positive integer in the environment variable name, or def
// when it is unset.
func Int(t testing.TB, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}

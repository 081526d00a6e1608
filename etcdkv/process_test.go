package etcdkv_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/etcdkv"
)

// Environment of the child processes of TestLockHolderKilled.
const (
	childEndpointsEnv = "ETCDKV_TEST_CHILD_ENDPOINTS"
	childPrefixEnv    = "ETCDKV_TEST_CHILD_PREFIX"
)

const childTTL = 2 * time.Second

// TestLockHolderKilled runs this test binary three more times, as
// processes sharing the embedded cluster, each incrementing one counter
// under GetForUpdate. The first to get the lock is killed (SIGKILL) at
// once; its session lease expires and the next gets the lock within TTL +
// 1 s; the third gets it when the second commits; the counter ends at 2.
func TestLockHolderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	prefix := testPrefix(t)
	type line struct {
		child int
		text  string
		at    time.Time
	}
	lines := make(chan line, 16)
	cmds := make([]*exec.Cmd, 3)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEndpointsEnv+"="+strings.Join(endpoints, ","), childPrefixEnv+"="+prefix)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "CHILD ") {
					lines <- line{i, strings.TrimPrefix(sc.Text(), "CHILD "), time.Now()}
				}
			}
		}()
	}
	t.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	})
	next := func(want string) line {
		t.Helper()
		for {
			select {
			case l := <-lines:
				if l.text == want {
					return l
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("no child said %q within 30 s", want)
			}
		}
	}
	first := next("locked")
	if err := cmds[first.child].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	second := next("locked")
	if second.child == first.child {
		t.Fatal("the killed child locked again")
	}
	if waited := second.at.Sub(killed); waited > childTTL+time.Second {
		t.Fatalf("the next child got the lock %v after the holder was killed, want within TTL %v + 1 s", waited, childTTL)
	}
	t.Logf("the next holder got the lock %v after the kill (TTL %v)", second.at.Sub(killed), childTTL)
	next("committed")
	third := next("locked")
	if third.child == first.child || third.child == second.child {
		t.Fatalf("child %d locked twice", third.child)
	}
	next("committed")
	for i, c := range cmds {
		err := c.Wait()
		if i != first.child && err != nil {
			t.Errorf("child %d: %v", i, err)
		}
	}
	// Each child increments the counter under its lock: the two that
	// acknowledged a commit are both in it, the killed one is not.
	db, err := etcdkv.Open(newClient(t, 0), &etcdkv.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.Get(bg, []byte("job")); err != nil || string(v) != "2" {
		t.Fatalf("counter = %q, %v; want 2: one increment per acknowledged commit", v, err)
	}
}

// TestLockChild is a child of TestLockHolderKilled; alone it does nothing.
func TestLockChild(t *testing.T) {
	prefix := os.Getenv(childPrefixEnv)
	if prefix == "" {
		t.Skip("a child of TestLockHolderKilled")
	}
	db, err := etcdkv.Open(newClient(t, 0), &etcdkv.Options{Prefix: prefix, SessionTTL: childTTL, LockTimeout: txkv.Forever})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(bg, &txkv.TxOptions{Strategy: txkv.Pessimistic}, func(tx *txkv.Tx) error {
		v, err := tx.GetForUpdate([]byte("job"))
		if err != nil && !errors.Is(err, txkv.ErrNotFound) {
			return err
		}
		n, _ := strconv.Atoi(string(v)) // absent: 0
		fmt.Println("CHILD locked")
		time.Sleep(100 * time.Millisecond) // the parent kills the first holder here
		return tx.Put([]byte("job"), []byte(strconv.Itoa(n+1)))
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("CHILD committed")
}

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

// deadlockChildEnv tells a child of TestDeadlockAcrossProcesses its role.
const deadlockChildEnv = "ETCDKV_TEST_DEADLOCK_CHILD"

// TestDeadlockAcrossProcesses runs this test binary twice more, as two
// processes over the embedded cluster: child 0 locks a, child 1 (which
// starts its transaction later: the younger) locks b, then each asks for
// the other's key with no lock timeout. The detector, elected in one of
// them, aborts child 1; child 0 commits.
func TestDeadlockAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	prefix := testPrefix(t)
	lines := make(chan [2]string, 8)
	cmds := make([]*exec.Cmd, 2)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDeadlockChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEndpointsEnv+"="+strings.Join(endpoints, ","),
			childPrefixEnv+"="+prefix, deadlockChildEnv+"="+strconv.Itoa(i))
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
				if text, ok := strings.CutPrefix(sc.Text(), "CHILD "); ok {
					lines <- [2]string{strconv.Itoa(i), text}
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
	got := map[string]string{}
	for len(got) < 2 {
		select {
		case l := <-lines:
			got[l[0]] = l[1]
		case <-time.After(30 * time.Second):
			t.Fatalf("children said %v within 30 s, want two results", got)
		}
	}
	if got["0"] != "committed" || !strings.HasPrefix(got["1"], "victim") {
		t.Fatalf("children said %v, want child 0 committed and child 1 the victim", got)
	}
	t.Logf("child 1: %s", got["1"])
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("child %d: %v", i, err)
		}
	}
}

// TestDeadlockChild is a child of TestDeadlockAcrossProcesses; alone it
// does nothing.
func TestDeadlockChild(t *testing.T) {
	prefix, role := os.Getenv(childPrefixEnv), os.Getenv(deadlockChildEnv)
	if prefix == "" || role == "" {
		t.Skip("a child of TestDeadlockAcrossProcesses")
	}
	i, _ := strconv.Atoi(role)
	keys := []string{"a", "b"}
	db, err := etcdkv.Open(newClient(t, i), &etcdkv.Options{Prefix: prefix, SessionTTL: childTTL, LockTimeout: txkv.Forever})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if i == 1 {
		awaitKey(t, db, "ready-0")
	}
	tx := begin(t, db, txkv.Pessimistic)
	lockIn(t, tx, keys[i])
	if err := db.Put(bg, []byte("ready-"+role), nil); err != nil {
		t.Fatal(err)
	}
	awaitKey(t, db, fmt.Sprintf("ready-%d", 1-i))
	start := time.Now()
	_, err = tx.GetForUpdate([]byte(keys[1-i]))
	var de *txkv.DeadlockError
	if errors.As(err, &de) {
		fmt.Printf("CHILD victim after %v: %v\n", time.Since(start).Round(time.Millisecond), err)
		return
	}
	if absentOK(err) != nil {
		t.Fatal(err)
	}
	if err := tx.Put([]byte(keys[1-i]), []byte(role)); err != nil {
		t.Fatal(err)
	}
	commit(t, tx)
	fmt.Println("CHILD committed")
}

// awaitKey waits until key exists.
func awaitKey(t *testing.T, db *txkv.DB, key string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := db.Get(bg, []byte(key)); err == nil {
			return
		} else if !errors.Is(err, txkv.ErrNotFound) || time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", key, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

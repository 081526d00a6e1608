package etcdkv_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/etcdkv"
)

// The tests run against an embedded etcd started by TestMain: one member by
// default, three with TXKV_ETCD_MEMBERS=3; short ticks, no fsync, a quiet
// logger, free 127.0.0.1 ports, data in a temporary directory.

var (
	endpoints []string // one client URL per member
	testSeq   atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if eps := os.Getenv(childEndpointsEnv); eps != "" {
		// A child of TestLockHolderKilled: the parent's cluster.
		endpoints = strings.Split(eps, ",")
		return m.Run()
	}
	members := 1
	if os.Getenv("TXKV_ETCD_MEMBERS") == "3" {
		members = 3
	}
	dir, err := os.MkdirTemp("", "etcdkv-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	stop, err := startCluster(dir, members)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting etcd:", err)
		return 1
	}
	code := m.Run()
	stop()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// freeURL returns an http URL on a free loopback port.
func freeURL() (url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return url.URL{}, err
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}, nil
}

// startCluster starts the shared cluster of the tests: members embedded
// etcd servers, their client URLs in endpoints.
func startCluster(dir string, members int) (stop func(), err error) {
	c, err := startMembers(dir, members)
	if err != nil {
		return nil, err
	}
	endpoints = c.endpoints
	return c.stop, nil
}

// cluster is a running embedded etcd cluster.
type cluster struct {
	servers   []*embed.Etcd
	endpoints []string     // one client URL per member, in the order of servers
	killed    map[int]bool // members stopped already
}

// stop closes every member still running.
func (c *cluster) stop() {
	for i, s := range c.servers {
		if !c.killed[i] {
			s.Close()
		}
	}
}

// kill stops member i without coordinating with the others (no leadership
// transfer), as a crash would, then closes its listeners.
func (c *cluster) kill(i int) {
	c.servers[i].Server.HardStop()
	c.servers[i].Close()
	c.killed[i] = true
}

// leader returns the index of the member that is the leader, or -1 while
// none is known.
func (c *cluster) leader() int {
	for i, s := range c.servers {
		if !c.killed[i] && s.Server.Leader() == s.Server.MemberID() {
			return i
		}
	}
	return -1
}

// startMembers starts members embedded etcd servers forming one cluster,
// their data under dir.
func startMembers(dir string, members int) (*cluster, error) {
	cfgs := make([]*embed.Config, members)
	c := &cluster{killed: map[int]bool{}}
	var initial []string
	for i := range cfgs {
		cfg, err := memberConfig(dir, i)
		if err != nil {
			return nil, err
		}
		cfgs[i] = cfg
		initial = append(initial, cfg.Name+"="+cfg.AdvertisePeerUrls[0].String())
		c.endpoints = append(c.endpoints, cfg.AdvertiseClientUrls[0].String())
	}
	for _, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
		s, err := embed.StartEtcd(cfg)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.servers = append(c.servers, s)
	}
	for _, s := range c.servers {
		select {
		case <-s.Server.ReadyNotify():
		case <-time.After(30 * time.Second):
			c.stop()
			return nil, fmt.Errorf("member %s not ready after 30 s", s.Config().Name)
		}
	}
	return c, nil
}

// memberConfig is member i's configuration: short ticks, no fsync, a quiet
// logger, free ports.
func memberConfig(dir string, i int) (*embed.Config, error) {
	peer, err := freeURL()
	if err != nil {
		return nil, err
	}
	client, err := freeURL()
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = fmt.Sprintf("m%d", i)
	cfg.Dir = fmt.Sprintf("%s/%s", dir, cfg.Name)
	cfg.TickMs, cfg.ElectionMs = 10, 100
	cfg.UnsafeNoFsync = true
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	return cfg, nil
}

// newClient returns a client of member i (mod the cluster's size), closed
// at the end of the test.
func newClient(t testing.TB, i int) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoints[i%len(endpoints)]},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("clientv3.New: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// testPrefix is a prefix no other test uses.
func testPrefix(t testing.TB) string {
	return fmt.Sprintf("test/%d/", testSeq.Add(1))
}

// openN opens n handles of one new database (its own prefix), each over
// its own client of a different member, closed at the end of the test.
func openN(t testing.TB, n int) []*txkv.DB {
	t.Helper()
	return openWith(t, n, etcdkv.Options{})
}

// openWith is openN with options (Prefix is set to a new one).
func openWith(t testing.TB, n int, o etcdkv.Options) []*txkv.DB {
	t.Helper()
	o.Prefix = testPrefix(t)
	dbs := make([]*txkv.DB, n)
	for i := range dbs {
		dbs[i] = openHandle(t, i, o)
	}
	return dbs
}

// openHandle opens a handle with o over a client of member i (mod the
// cluster's size), closed at the end of the test.
func openHandle(t testing.TB, i int, o etcdkv.Options) *txkv.DB {
	t.Helper()
	db, err := etcdkv.Open(newClient(t, i), &o)
	if err != nil {
		t.Fatalf("etcdkv.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func open1(t testing.TB) *txkv.DB { return openN(t, 1)[0] }

// open1Raw is open1 that also returns its client and prefix, for tests
// that look at or change etcd's keys directly.
func open1Raw(t testing.TB) (db *txkv.DB, cli *clientv3.Client, prefix string) {
	t.Helper()
	cli, prefix = newClient(t, 0), testPrefix(t)
	db, err := etcdkv.Open(cli, &etcdkv.Options{Prefix: prefix})
	if err != nil {
		t.Fatalf("etcdkv.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, cli, prefix
}

var bg = context.Background()

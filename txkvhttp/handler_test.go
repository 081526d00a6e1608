package txkvhttp

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/txkv/txkv"
)

// get serves one GET through h and returns the status and body.
func get(t testing.TB, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func getJSON(t testing.TB, h http.Handler, path string, v any) {
	t.Helper()
	code, body := get(t, h, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// A queue on one key: the snapshot lists the holder and the waiter on it,
// the graph their edge, and every endpoint has the documented fields.
func TestJSONShapes(t *testing.T) {
	db := openMem(t)
	h := NewServer(db)
	holder, waiter := begin(t, db, "holder"), begin(t, db, "waiter")
	lock(t, holder, "acct/1")
	done := queue(t, db, waiter, "acct/1")

	var raw map[string]json.RawMessage
	getJSON(t, h, "/api/snapshot.json", &raw)
	for _, f := range []string{"time", "locks", "graph", "deadlocks", "strategies", "hot_keys", "advice", "stats"} {
		if _, ok := raw[f]; !ok {
			t.Errorf("snapshot.json has no %q", f)
		}
	}
	var locks LockTable
	getJSON(t, h, "/api/locks.json", &locks)
	if len(locks.Targets) != 1 || locks.Holders != 1 || locks.Waiters != 1 {
		t.Fatalf("locks.json = %+v, want one target with one holder and one waiter", locks)
	}
	lt := locks.Targets[0]
	if string(lt.Key) != "acct/1" || lt.Text != `"acct/1"` || lt.Range ||
		len(lt.Holders) != 1 || lt.Holders[0].Tx != holder.ID() || lt.Holders[0].Label != "holder" || lt.Holders[0].Mode != "exclusive" ||
		len(lt.Waiters) != 1 || lt.Waiters[0].Tx != waiter.ID() || lt.Waiters[0].AgeAtLeast {
		t.Fatalf("target = %+v", lt)
	}
	var g Graph
	getJSON(t, h, "/api/graph.json", &g)
	if len(g.Edges) != 1 || g.Edges[0].Waiter != waiter.ID() || g.Edges[0].Holder != holder.ID() || !g.Edges[0].Live ||
		g.Edges[0].Target.Text != `"acct/1"` || len(g.Nodes) != 2 {
		t.Fatalf("graph.json = %+v", g)
	}
	var fields map[string]json.RawMessage
	for path, want := range map[string][]string{
		"/api/deadlocks.json":  {"total", "missed", "recent"},
		"/api/strategies.json": {"interval_ms", "series", "conflict_rate", "adaptive_mode"},
		"/api/advice.json":     {"strategy", "reasons"},
		"/api/stats.json":      {"Commits", "ByStrategy"},
		"/api/frame.json":      {"time", "panels"},
	} {
		clear(fields)
		getJSON(t, h, path, &fields)
		for _, f := range want {
			if _, ok := fields[f]; !ok {
				t.Errorf("%s has no %q: %s", path, f, fields)
			}
		}
	}
	var hot []HotKey
	getJSON(t, h, "/api/hotkeys.json", &hot)
	if len(hot) == 0 || string(hot[0].Key) != "acct/1" || hot[0].LockWaits == 0 {
		t.Errorf("hotkeys.json = %+v, want acct/1 with a lock wait", hot)
	}
	if code, body := get(t, h, "/graph.dot"); code != http.StatusOK || !strings.Contains(body, "->") {
		t.Errorf("graph.dot: %d %s", code, body)
	}
	_ = holder.Rollback()
	if err := <-done; err != nil {
		t.Fatalf("waiter: %v", err)
	}
}

// hostile are keys and labels that would break a page that did not escape
// them, or an XML parser: markup, quotes and invalid UTF-8.
var hostile = []string{
	`<script>alert("key")</script>`,
	`"quoted" 'single' & </td></tr>`,
	"\xff\xfe<img src=x onerror=alert(1)>\x00",
}

// Hostile keys and labels come out escaped on the page, in each frame, in
// the SVG (which stays well-formed XML) and in the JSON.
func TestEscaping(t *testing.T) {
	db := openMem(t)
	h := NewServer(db)
	var holders []*txkv.Tx
	var dones []<-chan error
	for i, k := range hostile {
		holder := begin(t, db, hostile[(i+1)%len(hostile)])
		waiter := begin(t, db, `<script>alert("label")</script>`)
		lock(t, holder, k)
		holders, dones = append(holders, holder), append(dones, queue(t, db, waiter, k))
	}
	defer func() {
		for i, h := range holders {
			_ = h.Rollback()
			if err := <-dones[i]; err != nil {
				t.Errorf("waiter %d: %v", i, err)
			}
		}
	}()
	check := func(where, body string) {
		t.Helper()
		for _, bad := range []string{"<script>alert", "<img src=x", "</td></tr>\"", "\x00"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q unescaped", where, bad)
			}
		}
		if !utf8.ValidString(body) {
			t.Errorf("%s is not valid UTF-8", where)
		}
	}
	_, pageHTML := get(t, h, "/")
	check("the page", pageHTML)
	if !strings.Contains(pageHTML, "&lt;script&gt;alert(&#34;key&#34;)&lt;/script&gt;") {
		t.Errorf("the page does not show the <script> key escaped")
	}
	var f frame
	getJSON(t, h, "/api/frame.json", &f)
	for id, html := range f.Panels {
		check("panel "+id, html)
	}
	if !strings.Contains(f.Panels["graph"], "&lt;script&gt;") {
		t.Errorf("the graph panel does not show the labels escaped:\n%s", f.Panels["graph"])
	}
	code, svg := get(t, h, "/graph.svg")
	if code != http.StatusOK {
		t.Fatalf("graph.svg: %d", code)
	}
	check("graph.svg", svg)
	wellFormed(t, svg)
	var locks LockTable
	getJSON(t, h, "/api/locks.json", &locks)
	for _, k := range hostile {
		if !slices.ContainsFunc(locks.Targets, func(lt LockTarget) bool {
			return string(lt.Key) == k && lt.Text == strconv.Quote(k) && utf8.ValidString(lt.Text)
		}) {
			t.Errorf("locks.json lacks the exact key %q with its quoted text", k)
		}
	}
}

// wellFormed fails t unless s parses as XML to its end.
func wellFormed(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("graph.svg is not well-formed XML: %v\n%s", err, s)
		}
	}
}

// deadlock makes two labelled transactions deadlock on keys a and b and
// returns the victim's ID once the victim got its error.
func deadlock(t *testing.T, db *txkv.DB, a, b string) (victim, survivor *txkv.Tx) {
	t.Helper()
	t1, t2 := begin(t, db, "a-then-b"), begin(t, db, "b-then-a")
	lock(t, t1, a)
	lock(t, t2, b)
	d1 := queue(t, db, t1, b)
	_, err := t2.GetForUpdate([]byte(a)) // closes the cycle
	var e1 error
	if err == nil || errors.Is(err, txkv.ErrNotFound) {
		t.Fatalf("t2 was not the victim (youngest): %v", err)
	}
	if !errors.Is(err, txkv.ErrDeadlock) {
		t.Fatalf("t2: %v, want a deadlock", err)
	}
	_ = t2.Rollback()
	if e1 = <-d1; e1 != nil {
		t.Fatalf("t1: %v", e1)
	}
	return t2, t1
}

// A deadlock that happens while someone watches is listed with its cycle
// and victim, and drawn on the graph: red cycle, victim marked.
func TestDeadlockShown(t *testing.T) {
	db := openMem(t)
	h := NewServer(db)
	get(t, h, "/api/snapshot.json") // someone watches
	victim, survivor := deadlock(t, db, "k<1>", "k<2>")
	var dl DeadlockList
	waitFor(t, "the deadlock to be captured", func() bool {
		getJSON(t, h, "/api/deadlocks.json", &dl)
		return len(dl.Recent) > 0
	})
	d := dl.Recent[0]
	if dl.Total != 1 || dl.Missed != 0 || d.Victim != victim.ID() || len(d.Cycle) != 2 || d.Before ||
		d.Labels[victim.ID()] != "b-then-a" || !strings.Contains(d.Message, "deadlock") {
		t.Fatalf("deadlocks.json = %+v", dl)
	}
	var g Graph
	getJSON(t, h, "/api/graph.json", &g)
	if g.Deadlock == nil || g.Deadlock.Seq != d.Seq {
		t.Fatalf("graph.json draws no deadlock: %+v", g)
	}
	i := slices.IndexFunc(g.Nodes, func(n GraphNode) bool { return n.Tx == victim.ID() })
	j := slices.IndexFunc(g.Nodes, func(n GraphNode) bool { return n.Tx == survivor.ID() })
	if i < 0 || j < 0 || !g.Nodes[i].Victim || !g.Nodes[i].InCycle || g.Nodes[j].Victim || !g.Nodes[j].InCycle {
		t.Fatalf("graph nodes = %+v", g.Nodes)
	}
	cycle := 0
	for _, e := range g.Edges {
		if e.Cycle {
			cycle++
		}
	}
	if cycle != 2 {
		t.Fatalf("graph has %d cycle edges, want 2: %+v", cycle, g.Edges)
	}
	_, svg := get(t, h, "/graph.svg")
	if !strings.Contains(svg, `class="node victim" data-tx="`+strconv.FormatUint(victim.ID(), 10)+`"`) ||
		!strings.Contains(svg, "edge cycle") {
		t.Errorf("graph.svg does not mark the victim and the cycle:\n%s", svg)
	}
	_, html := get(t, h, "/")
	if !strings.Contains(html, "victim") || !strings.Contains(html, "&#34;k&lt;1&gt;&#34;") {
		t.Errorf("the page does not list the deadlock")
	}
}

// A deadlock that happened before anyone watched is shown as such.
func TestDeadlockBeforeWatching(t *testing.T) {
	db := openMem(t)
	victim, _ := deadlock(t, db, "a", "b")
	h := NewServer(db)
	var dl DeadlockList
	getJSON(t, h, "/api/deadlocks.json", &dl)
	if len(dl.Recent) != 1 || !dl.Recent[0].Before || dl.Recent[0].Victim != victim.ID() {
		t.Fatalf("deadlocks.json = %+v", dl)
	}
}

// readEvent reads one server-sent event: its name and data.
func readEvent(t *testing.T, r *bufio.Reader) (name, data string) {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data += strings.TrimPrefix(line, "data: ")
		}
	}
}

// The event stream sends frames of every panel, and its handler returns
// when the client goes away (TestMain then finds no goroutine left).
func TestEventStreamEndsWhenClientLeaves(t *testing.T) {
	db := openMem(t)
	srv := NewServer(db)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	name, data := readEvent(t, bufio.NewReader(resp.Body))
	var f frame
	if err := json.Unmarshal([]byte(data), &f); name != "frame" || err != nil {
		t.Fatalf("first event %q: %v", name, err)
	}
	for _, p := range panels {
		if _, ok := f.Panels[p]; !ok {
			t.Errorf("frame has no panel %q", p)
		}
	}
	if srv.Streams() != 1 {
		t.Fatalf("%d streams running, want 1", srv.Streams())
	}
	cancel()
	waitFor(t, "the stream to end", func() bool { return srv.Streams() == 0 })
}

// Close ends the running streams and refuses new ones; the JSON goes on.
func TestCloseEndsStreams(t *testing.T) {
	db := openMem(t)
	srv := NewServer(db)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	resp, err := ts.Client().Get(ts.URL + "/events")
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	defer resp.Body.Close()
	readEvent(t, bufio.NewReader(resp.Body))
	srv.Close()
	waitFor(t, "the stream to end", func() bool { return srv.Streams() == 0 })
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("reading the ended stream: %v", err)
	}
	if code, _ := get(t, srv, "/events"); code != http.StatusServiceUnavailable {
		t.Errorf("events after Close: %d, want 503", code)
	}
	if code, _ := get(t, srv, "/api/locks.json"); code != http.StatusOK {
		t.Errorf("locks.json after Close: %d", code)
	}
}

// Nothing but GET and HEAD is served.
func TestReadOnly(t *testing.T) {
	h := Handler(openMem(t))
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/api/locks.json", strings.NewReader("{}")))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d, want 405", m, rec.Code)
		}
	}
	if code, _ := get(t, h, "/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope: %d", code)
	}
}

// Mounted under a prefix, the page and its links work; the prefix without
// its slash redirects.
func TestMountedUnderPrefix(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/debug/txkv/", http.StripPrefix("/debug/txkv", Handler(openMem(t))))
	for _, p := range []string{"/debug/txkv/", "/debug/txkv/page.js", "/debug/txkv/page.css", "/debug/txkv/api/locks.json", "/debug/txkv/graph.svg"} {
		if code, _ := get(t, mux, p); code != http.StatusOK {
			t.Errorf("GET %s: %d", p, code)
		}
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/txkv", nil))
	if rec.Code/100 != 3 || rec.Header().Get("Location") != "/debug/txkv/" {
		t.Errorf("GET /debug/txkv: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
}

// Listen without a host binds the loopback interface only.
func TestListenLocalhost(t *testing.T) {
	for _, addr := range []string{"", ":0", "localhost:0"} {
		ln, err := Listen(addr)
		if err != nil {
			t.Fatalf("Listen(%q): %v", addr, err)
		}
		ip := ln.Addr().(*net.TCPAddr).IP
		_ = ln.Close()
		if !ip.IsLoopback() {
			t.Errorf("Listen(%q) bound %v", addr, ip)
		}
	}
	if _, err := Listen("no-port"); err == nil || !strings.HasPrefix(err.Error(), "txkv: ") {
		t.Errorf("Listen(no-port) = %v", err)
	}
}

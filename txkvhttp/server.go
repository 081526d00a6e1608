package txkvhttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv"
)

// Server serves the live view of one DB (see the package doc). It is an
// http.Handler; it starts no goroutine of its own: the requests do the
// work, and the event streams end when their clients go away or at Close.
type Server struct {
	c *collector

	streams atomic.Int64 // event streams running now (tests wait for 0)

	// closeOnce guards closing done, which ends every event stream.
	closeOnce sync.Once
	done      chan struct{}
}

// Handler returns the live view of db, to mount like net/http/pprof:
//
//	mux.Handle("/debug/txkv/", http.StripPrefix("/debug/txkv", txkvhttp.Handler(db)))
//
// The page is at the mount point's "/"; see the package doc for the JSON
// endpoints. It serves GET and HEAD only: nothing it serves changes data or
// locks.
func Handler(db *txkv.DB) http.Handler { return NewServer(db) }

// NewServer returns the live view of db, as Handler does, as a *Server (for
// SetDB and Close).
func NewServer(db *txkv.DB) *Server {
	return &Server{c: newCollector(db, ""), done: make(chan struct{})}
}

// SetDB makes the view show db from now on, with caption (what runs: the
// page shows it, and marks the change on the charts). The history of rates
// goes on; the recent deadlocks stay listed. txkvbench -serve calls it as
// it moves from one run to the next. The previous DB may be closed after
// SetDB returns.
func (s *Server) SetDB(db *txkv.DB, caption string) { s.c.setDB(db, caption) }

// Close ends the event streams now and refuses new ones (they get 503): for
// an http.Server's RegisterOnShutdown, as Shutdown does not end streaming
// responses. The page and the JSON endpoints go on working.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.done) }) }

// ServeHTTP routes a request: the path is relative to the mount point.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "txkv: the live view is read-only", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "+
		"connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	path := strings.TrimPrefix(r.URL.Path, "/")
	switch path {
	case "":
		s.page(w, r)
	case "page.js", "page.css":
		s.asset(w, path)
	case "events":
		s.events(w, r)
	case "graph.dot":
		s.dot(w)
	case "graph.svg":
		s.svg(w)
	default:
		s.api(w, path)
	}
}

// page renders the whole page from a snapshot: it is complete without
// JavaScript, and the script keeps it live.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "" && !strings.HasSuffix(r.RequestURI, "/") {
		// Mounted with StripPrefix and asked without the slash: the
		// page's relative links need it.
		http.Redirect(w, r, strings.SplitN(r.RequestURI, "?", 2)[0]+"/", http.StatusMovedPermanently)
		return
	}
	var b bytes.Buffer
	if err := page.ExecuteTemplate(&b, "page", newView(s.c.snapshot())); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}

func (s *Server) asset(w http.ResponseWriter, name string) {
	data, err := assets.ReadFile("assets/" + name)
	if err != nil {
		http.NotFound(w, nil)
		return
	}
	ct := "text/css; charset=utf-8"
	if strings.HasSuffix(name, ".js") {
		ct = "text/javascript; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(data)
}

// api serves the JSON endpoints: parts of one snapshot.
func (s *Server) api(w http.ResponseWriter, path string) {
	var v any
	switch path {
	case "api/frame.json":
		f, err := s.c.frame()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSONBytes(w, f.data)
		return
	case "api/snapshot.json":
		v = s.c.snapshot()
	case "api/locks.json":
		v = s.c.snapshot().Locks
	case "api/graph.json":
		v = s.c.snapshot().Graph
	case "api/deadlocks.json":
		v = s.c.snapshot().Deadlocks
	case "api/strategies.json":
		v = s.c.snapshot().Strategies
	case "api/hotkeys.json":
		v = s.c.snapshot().HotKeys
	case "api/advice.json":
		v = s.c.snapshot().Advice
	case "api/stats.json":
		v = s.c.snapshot().Stats
	default:
		http.Error(w, "txkv: no such page (try ./ for the live view)", http.StatusNotFound)
		return
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "txkv: encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSONBytes(w, data)
}

func writeJSONBytes(w http.ResponseWriter, data []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(data)
}

// dot writes the live wait-for graph as Graphviz DOT (db.WriteWaitForGraph).
func (s *Server) dot(w http.ResponseWriter) {
	var b bytes.Buffer
	if err := s.c.currentDB().WriteWaitForGraph(&b); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/vnd.graphviz; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// svg writes the drawing of the graph the page shows, styled to stand alone.
func (s *Server) svg(w http.ResponseWriter) {
	g := graphSVG(&s.c.snapshot().Graph)
	css, _ := assets.ReadFile("assets/page.css")
	i := strings.Index(g, "<defs>")
	g = g[:i] + "<style>" + string(css) + "</style>" + g[i:]
	w.Header().Set("Content-Type", "image/svg+xml")
	_, _ = w.Write([]byte(g))
}

// heartbeat is how often a stream with nothing new sends a comment, so
// that proxies keep it open and a vanished client is noticed.
const heartbeat = 15 * time.Second

// framesEvery is how often a stream sends a frame (when it changed); it
// polls the latest deadlock at every refreshEvery/2 in between.
const framesEvery = 500 * time.Millisecond

// events is the server-sent event stream of frames. It ends when the
// client goes away (the request's context), at Close, or on a write error.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "txkv: this server cannot stream responses", http.StatusInternalServerError)
		return
	}
	select {
	case <-s.done:
		http.Error(w, "txkv: the live view is closed", http.StatusServiceUnavailable)
		return
	default:
	}
	s.streams.Add(1)
	defer s.streams.Add(-1)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	if err := s.stream(w, fl, r); err != nil && !errors.Is(err, errStreamEnd) {
		fmt.Fprintf(w, "event: error\ndata: %s\n\n", jsonString(err.Error()))
		fl.Flush()
	}
}

var errStreamEnd = errors.New("txkv: stream ended")

func (s *Server) stream(w http.ResponseWriter, fl http.Flusher, r *http.Request) error {
	tick := time.NewTicker(refreshEvery / 2)
	defer tick.Stop()
	var sent []byte
	var lastFrame, lastWrite time.Time
	for {
		now := time.Now()
		if now.Sub(lastFrame) >= framesEvery {
			lastFrame = now
			f, err := s.c.frame()
			if err != nil {
				return err
			}
			if !bytes.Equal(f.data, sent) {
				if _, err := fmt.Fprintf(w, "event: frame\ndata: %s\n\n", f.data); err != nil {
					return errStreamEnd
				}
				fl.Flush()
				sent, lastWrite = f.data, now
			}
		} else {
			s.c.poll()
		}
		if now.Sub(lastWrite) >= heartbeat {
			if _, err := fmt.Fprint(w, ": still here\n\n"); err != nil {
				return errStreamEnd
			}
			fl.Flush()
			lastWrite = now
		}
		select {
		case <-r.Context().Done():
			return errStreamEnd
		case <-s.done:
			return errStreamEnd
		case <-tick.C:
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Listen listens on addr for the live view. An address without a host
// (":6060", or "" for any free port) listens on localhost only: the view
// shows keys and labels, so exposing it is a decision to spell out
// ("0.0.0.0:6060").
func Listen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if addr == "" {
		host, port, err = "", "0", nil
	}
	if err != nil {
		return nil, fmt.Errorf("txkv: txkvhttp: address %q: %w", addr, err)
	}
	if host == "" {
		host = "localhost"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("txkv: txkvhttp: %w", err)
	}
	return ln, nil
}

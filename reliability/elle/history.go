package elle

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// OpKind is the kind of a micro-operation.
type OpKind uint8

// The two micro-operations of the list-append workload.
const (
	Read   OpKind = iota // observe the whole list of a key
	Append               // add one unique value to the end of a key's list
)

// Op is one micro-operation of a transaction.
type Op struct {
	Kind  OpKind
	Key   string
	Value int   // Append: the value appended, unique per key over the history
	List  []int // Read: the list observed (nil or empty: the key was absent)
}

// R returns a Read of key that observed list.
func R(key string, list ...int) Op { return Op{Kind: Read, Key: key, List: list} }

// A returns an Append of v to key.
func A(key string, v int) Op { return Op{Kind: Append, Key: key, Value: v} }

func (o Op) String() string {
	if o.Kind == Append {
		return fmt.Sprintf("append(%s, %d)", o.Key, o.Value)
	}
	return fmt.Sprintf("read(%s)=%v", o.Key, o.List)
}

// Status is what the client learned about a transaction's outcome.
type Status uint8

// The outcomes. Unknown is Jepsen's "info": the commit may or may not have
// happened (a timeout, a lost connection); the checker assumes it committed
// only if one of its writes was observed.
const (
	Committed Status = iota
	Aborted
	Unknown
)

func (s Status) String() string {
	switch s {
	case Committed:
		return "committed"
	case Aborted:
		return "aborted"
	case Unknown:
		return "unknown"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// Txn is one attempted transaction of a history. A client that retries
// records each attempt as its own Txn (the failed ones Aborted): values an
// aborted attempt appended must never be read, which is how G1a is caught.
type Txn struct {
	ID     int // unique within the history; used in reports
	Status Status
	Ops    []Op
	// Start and End bound the transaction in real time (any clock that
	// orders events; a logical counter will do): Start is taken before it
	// began, End after it returned. Only CheckOptions.RealTime uses them;
	// 0 means unknown.
	Start, End int64
}

func (t Txn) String() string {
	parts := make([]string, len(t.Ops))
	for i, o := range t.Ops {
		parts[i] = o.String()
	}
	return fmt.Sprintf("T%d(%s)[%s]", t.ID, t.Status, strings.Join(parts, " "))
}

// ErrMalformed reports a history the checker cannot interpret: duplicate
// transaction IDs, or a value appended twice to one key (the list-append
// workload needs unique values to know who wrote what).
var ErrMalformed = errors.New("txkv: elle: malformed history")

// Recorder collects a history from concurrent clients. The zero value is
// ready to use.
type Recorder struct {
	// mu protects the fields of the struct below.
	mu struct {
		sync.Mutex
		nextID int
		txns   []Txn
	}
}

// NextID returns a fresh transaction ID (1, 2, ...).
func (r *Recorder) NextID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.nextID++
	return r.mu.nextID
}

// Add records a finished transaction. The Recorder keeps t's slices.
func (r *Recorder) Add(t Txn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.txns = append(r.mu.txns, t)
}

// History returns a copy of the recorded transactions.
func (r *Recorder) History() []Txn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Txn(nil), r.mu.txns...)
}

// EncodeList encodes a list as the comma-separated decimal values a
// list-append workload stores under a key ("" for the empty list).
func EncodeList(list []int) []byte {
	b := make([]byte, 0, len(list)*6)
	for i, v := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(v), 10)
	}
	return b
}

// AppendEncoded returns the encoding of list ++ [v] given enc, the encoding
// of list, without decoding it.
func AppendEncoded(enc []byte, v int) []byte {
	b := make([]byte, 0, len(enc)+12)
	b = append(b, enc...)
	if len(enc) > 0 {
		b = append(b, ',')
	}
	return strconv.AppendInt(b, int64(v), 10)
}

// DecodeList decodes EncodeList's format; garbage is an error, never a panic.
func DecodeList(b []byte) ([]int, error) {
	if len(b) == 0 {
		return nil, nil
	}
	fields := strings.Split(string(b), ",")
	list := make([]int, len(fields))
	for i, f := range fields {
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("txkv: elle: bad list element %q: %w", f, err)
		}
		list[i] = v
	}
	return list, nil
}

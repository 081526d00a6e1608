package etcdkv

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/txkv/txkv/lockmgr"
)

// keyspace maps user keys to etcd keys under the DB's prefix (see the
// diagram in doc.go): data, point lock queues, range lock entries,
// transaction records (record.go), wait-for edges and abort markers
// (waitfor.go), the detector's election (detector.go).
type keyspace struct{ prefix string }

const (
	dataSpace  = "d/" // data: prefix + "d/" + user key
	lockSpace  = "l/" // point lock queues: prefix + "l/" + hex(key) + "/" + mode + "/" + owner
	rangeSpace = "r/" // range locks: prefix + "r/" + hex(start) + "/" + mode + "/" + owner
	waitSpace  = "w/" // wait-for edges: prefix + "w/" + waiter + "/" + holder (waitName)
	abortSpace = "a/" // abort markers of deadlock victims: prefix + "a/" + waiter
	electSpace = "e/" // the election of the deadlock detector
	txnSpace   = "t/" // transaction records: prefix + "t/" + hex(txid)
)

func (k keyspace) waitPrefix() string { return k.prefix + waitSpace }
func (k keyspace) edgeKey(waiter, holder string) string {
	return k.waitPrefix() + waiter + "/" + holder
}
func (k keyspace) abortKey(waiter string) string { return k.prefix + abortSpace + waiter }

// electPrefix is the election's prefix without its "/": concurrency.Election
// adds one, so its keys are prefix + "e/" + lease.
func (k keyspace) electPrefix() string { return k.prefix + strings.TrimSuffix(electSpace, "/") }

func (k keyspace) dataPrefix() string { return k.prefix + dataSpace }

// data returns the etcd key of user key.
func (k keyspace) data(key []byte) string { return k.dataPrefix() + string(key) }

// user returns the user key of an etcd data key.
func (k keyspace) user(etcdKey []byte) []byte {
	return etcdKey[len(k.dataPrefix()):]
}

// dataRange returns the etcd range [from, to) of user range [start, end)
// (nil: unbounded).
func (k keyspace) dataRange(start, end []byte) (from, to string) {
	from = k.dataPrefix() + string(start)
	if end == nil {
		return from, clientv3.GetPrefixRangeEnd(k.dataPrefix())
	}
	return from, k.dataPrefix() + string(end)
}

// Lock keys hex-encode the user key: hex has no "/", so a key's queue is
// exactly the keys under hex(key)+"/", and hex preserves byte order with
// "/" sorting below every hex digit, so hex(a)+"/" < hex(b)+"/" exactly
// when a < b: a user range is one etcd range of queues.

func (k keyspace) lockPrefix() string  { return k.prefix + lockSpace }
func (k keyspace) rangePrefix() string { return k.prefix + rangeSpace }

// queue returns the etcd range holding every entry of key's point queue.
func (k keyspace) queue(key []byte) (from, to string) {
	q := k.lockPrefix() + hex.EncodeToString(key)
	return q + "/", q + "0" // "0" is the byte after "/"
}

// xqueue returns the etcd range of key's exclusive entries.
func (k keyspace) xqueue(key []byte) (from, to string) {
	q, _ := k.queue(key)
	return q + "x/", q + "x0"
}

// queues returns the etcd range of the point queues of user range
// [start, end).
func (k keyspace) queues(start, end []byte) (from, to string) {
	from = k.lockPrefix() + hex.EncodeToString(start) + "/"
	if end == nil {
		return from, clientv3.GetPrefixRangeEnd(k.lockPrefix())
	}
	return from, k.lockPrefix() + hex.EncodeToString(end) + "/"
}

// rangesBelow returns the etcd range of the range entries that start
// before end (nil: all); those that also end after the target's start
// overlap it (filtered after reading).
func (k keyspace) rangesBelow(end []byte, isPoint bool) (from, to string) {
	from = k.rangePrefix()
	switch {
	case end == nil:
		return from, clientv3.GetPrefixRangeEnd(from)
	case isPoint: // starts at or before the key itself
		return from, from + hex.EncodeToString(end) + "0"
	}
	return from, from + hex.EncodeToString(end) + "/"
}

// allRanges returns the etcd range of every range entry.
func (k keyspace) allRanges() (from, to string) {
	return k.rangePrefix(), clientv3.GetPrefixRangeEnd(k.rangePrefix())
}

func modeChar(m lockmgr.Mode) string {
	if m == lockmgr.Shared {
		return "s"
	}
	return "x"
}

// entryKey returns the etcd key of e, the seq-th request of its
// transaction: "<hex target start>/<mode>/<lease>.<tx>.<seq>".
func (k keyspace) entryKey(e *entry, seq uint64) string {
	space := k.lockPrefix()
	if e.isRange {
		space = k.rangePrefix()
	}
	return fmt.Sprintf("%s%s/%s/%016x.%d.%d", space, hex.EncodeToString(e.start), modeChar(e.mode),
		uint64(e.own.lease), e.own.tx, seq)
}

// entryValue is what an entry's value holds beyond its key.
type entryValue struct {
	Granted bool   `json:"g,omitempty"`    // see entry.granted
	Base    int64  `json:"base,omitempty"` // see entry.base
	End     string `json:"end,omitempty"`  // a range's end, hex; "" with Open
	Open    bool   `json:"open,omitempty"` // a range without an end
}

func (e *entry) value() string {
	v := entryValue{Granted: e.granted, Base: e.base}
	if e.isRange {
		v.End, v.Open = hex.EncodeToString(e.end), e.end == nil
	}
	b, _ := json.Marshal(v) // cannot fail: plain fields
	return string(b)
}

// parseEntry reads an entry back. Only etcdkv writes these keys; one it
// cannot parse (another version, a hand edit) is read as an exclusive
// lock of an unknown owner on what it names, or ignored if it names
// nothing, rather than failing every request near it.
func (k keyspace) parseEntry(kv *mvccpb.KeyValue) (entry, bool) {
	key := string(kv.Key)
	e := entry{key: key, rev: kv.CreateRevision, mode: lockmgr.Exclusive}
	var rest string
	switch {
	case strings.HasPrefix(key, k.lockPrefix()):
		rest = key[len(k.lockPrefix()):]
	case strings.HasPrefix(key, k.rangePrefix()):
		rest, e.isRange = key[len(k.rangePrefix()):], true
	default:
		return e, false
	}
	parts := strings.SplitN(rest, "/", 3)
	start, err := hex.DecodeString(parts[0])
	if err != nil {
		return e, false
	}
	e.start = start
	if e.isRange && len(start) == 0 {
		e.start = nil
	}
	var v entryValue
	if json.Unmarshal(kv.Value, &v) == nil {
		e.base, e.granted = v.Base, v.Granted
		if e.isRange && !v.Open {
			if end, err := hex.DecodeString(v.End); err == nil {
				e.end = end
			}
		}
	}
	if len(parts) == 3 {
		if parts[1] == "s" {
			e.mode = lockmgr.Shared
		}
		e.own = parseOwner(parts[2])
	}
	return e, true
}

// parseOwner reads "<lease hex>.<tx>.<seq>"; a malformed one is the zero
// owner, which is nobody's.
func parseOwner(s string) owner {
	f := strings.Split(s, ".")
	if len(f) != 3 {
		return owner{}
	}
	lease, err1 := strconv.ParseUint(f[0], 16, 64)
	tx, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return owner{}
	}
	return owner{lease: int64(lease), tx: tx}
}

package etcdkv

import (
	clientv3 "go.etcd.io/etcd/client/v3"
)

// keyspace maps user keys to etcd keys under the DB's prefix (see the
// diagram in doc.go). Only the data subspace is used so far; the lock,
// wait-for and transaction-record subspaces are reserved for the
// pessimistic strategies and ambiguous-commit records.
type keyspace struct{ prefix string }

const (
	dataSpace = "d/" // data: prefix + "d/" + user key
	lockSpace = "l/" // reserved: lock queues
	waitSpace = "w/" // reserved: wait-for edges
	txnSpace  = "t/" // reserved: transaction records
)

var _ = []string{lockSpace, waitSpace, txnSpace}

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

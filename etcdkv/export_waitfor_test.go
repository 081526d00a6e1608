package etcdkv

import (
	"context"
	"encoding/hex"
	"encoding/json"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/txkv/txkv"
)

// AbortMarkerAroundPublication plays the race the abort watch's Get covers:
// a wait first published at some revision, the detector's marker put after
// it (or, with before, before it: a leftover), and the watch created at a
// later revision, so it will not report that put. It returns what
// abortEvent makes of the watch's created response.
func AbortMarkerAroundPublication(cli *clientv3.Client, prefix string, before bool) error {
	ctx := context.Background()
	e, err := newEngine(cli, &Options{Prefix: prefix})
	if err != nil {
		return err
	}
	defer e.Close()
	t := newTx(e, ctx, txkv.TxOptions{}, false)
	me, other := waitName(owner{lease: 1, tx: t.id}), waitName(owner{lease: 2, tx: 7})
	v := edgeValue{Key: hex.EncodeToString([]byte("a")), Mode: "x", HMode: "x"}
	marker, _ := json.Marshal([]markEdge{{W: me, H: other, V: v}, {W: other, H: me, V: v}})
	putMarker := func() error {
		_, err := cli.Put(ctx, e.ks.abortKey(me), string(marker))
		return err
	}
	if before {
		if err := putMarker(); err != nil {
			return err
		}
	}
	pub, err := cli.Put(ctx, e.ks.edgeKey(me, other), "{}")
	if err != nil {
		return err
	}
	t.pub = &waitPub{name: me, rev: pub.Header.Revision, cancel: func() {}}
	if !before {
		if err := putMarker(); err != nil {
			return err
		}
	}
	now, err := cli.Put(ctx, prefix+"unrelated", "x")
	if err != nil {
		return err
	}
	created := clientv3.WatchResponse{Created: true, Header: &etcdserverpb.ResponseHeader{Revision: now.Header.Revision}}
	if err := t.abortEvent(created, true); err != nil {
		return err
	}
	return nil
}

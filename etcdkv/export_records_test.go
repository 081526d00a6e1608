package etcdkv

import (
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/txkv/txkv/engine"
)

// NewEngine exposes the engine to the external tests, which spread one
// *txkv.DB over several handles (multi_test.go).
func NewEngine(cli *clientv3.Client, opts *Options) (engine.Engine, error) {
	e, err := newEngine(cli, opts)
	if err != nil {
		return nil, err
	}
	e.startDetector()
	return e, nil
}

package etcdkv

import (
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/txkv/txkv"
)

// checkTxnSize fails with ErrTxnTooLarge when a commit needs more compares
// or operations than one etcd Txn may hold.
func checkTxnSize(compares, ops int, o Options) error {
	if n := max(compares, ops); n > o.MaxTxnOps {
		return fmt.Errorf("%w: the commit needs %d compares and %d writes in one etcd Txn (counting one of each for its transaction record and a compare per unlocked written key); etcd allows %d of each (--max-txn-ops)",
			txkv.ErrTxnTooLarge, compares, ops, o.MaxTxnOps)
	}
	return nil
}

// mapLimitErr maps etcd's refusals of a too large request to txkv's errors.
func mapLimitErr(err error, o Options) error {
	switch {
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return fmt.Errorf("%w: etcd refused the Txn: more than its --max-txn-ops (%d configured here): %v",
			txkv.ErrTxnTooLarge, o.MaxTxnOps, err)
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return fmt.Errorf("%w: etcd refused the request: over its --max-request-bytes (%d configured here): %v",
			txkv.ErrValueTooLarge, o.MaxRequestBytes, err)
	}
	return err
}

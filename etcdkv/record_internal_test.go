package etcdkv

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestDefinite: which errors say a request was not applied. Anything not
// known to be a refusal counts as ambiguous, and is resolved.
func TestDefinite(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{rpctypes.ErrTooManyOps, true},
		{rpctypes.ErrRequestTooLarge, true},
		{rpctypes.ErrLeaseNotFound, true},
		{rpctypes.ErrCompacted, true},
		{rpctypes.ErrTooManyRequests, true},
		{rpctypes.ErrPermissionDenied, true},
		{rpctypes.ErrTimeout, false},
		{rpctypes.ErrLeaderChanged, false},
		{rpctypes.ErrNoLeader, false},
		{rpctypes.ErrStopped, false},
		{status.Error(codes.Unavailable, "error reading from server: EOF"), false},
		{status.Error(codes.Canceled, "grpc: the client connection is closing"), false},
		{context.DeadlineExceeded, false},
		{fmt.Errorf("wrapped: %w", context.Canceled), false},
		{errors.New("something else"), false},
	} {
		if got := definite(c.err); got != c.want {
			t.Errorf("definite(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

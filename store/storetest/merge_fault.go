package storetest

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

var errInjected = errors.New("injected write failure")

// faultBackend fails the n-th write of a transaction when armed, to show
// that a change failing half-way leaves nothing behind.
type faultBackend struct {
	store.Backend
	failOn *atomic.Int32 // 0: off
}

func (b faultBackend) Update(ctx context.Context, fn func(tx store.Txn) error) error {
	n := int(b.failOn.Load())
	return b.Backend.Update(ctx, func(tx store.Txn) error {
		if n == 0 {
			return fn(tx)
		}
		return fn(&faultTxn{Txn: tx, left: n})
	})
}

type faultTxn struct {
	store.Txn
	left int
}

func (t *faultTxn) write() error {
	t.left--
	if t.left == 0 {
		return errInjected
	}
	return nil
}

func (t *faultTxn) Put(k string, v []byte, ttl time.Duration) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Txn.Put(k, v, ttl)
}

func (t *faultTxn) Delete(k string) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Txn.Delete(k)
}

func (t *faultTxn) IndexAdd(i, m string) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Txn.IndexAdd(i, m)
}

func (t *faultTxn) IndexRemove(i, m string) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Txn.IndexRemove(i, m)
}

// testMergeInjectedFailure fails ApplyMerge at every write in turn: each
// failure leaves both parent orgs exactly as they were; once the failure
// point is past the last write, the merge applies whole.
func testMergeInjectedFailure(t *testing.T, newBackend Factory) {
	var arm atomic.Int32
	f := newMergeFixture(t, func(t *testing.T) store.Backend {
		return faultBackend{Backend: newBackend(t), failOn: &arm}
	})
	f.approve(t)
	before := f.snapshot(t)
	for n := int32(1); ; n++ {
		if n > 500 {
			t.Fatal("ApplyMerge never succeeded")
		}
		arm.Store(n)
		_, err := f.s.ApplyMerge(t.Context(), f.proposal.ID, f.c.Now())
		arm.Store(0)
		if err == nil {
			if n == 1 {
				t.Fatal("ApplyMerge wrote nothing")
			}
			break
		}
		if !errors.Is(err, errInjected) {
			t.Fatalf("write %d: ApplyMerge = %v, want the injected error", n, err)
		}
		if after := f.snapshot(t); !reflect.DeepEqual(after, before) {
			t.Fatalf("a merge failing at write %d changed the store:\nbefore %+v\nafter  %+v", n, before, after)
		}
		if p, err := f.s.GetMergeProposal(t.Context(), f.proposal.ID); err != nil || p.Status != store.MergeProposed {
			t.Fatalf("after a failed merge the proposal is %+v, %v", p, err)
		}
	}
	if p, _ := f.s.GetMergeProposal(t.Context(), f.proposal.ID); p.Status != store.MergeApplied {
		t.Fatalf("proposal after the successful attempt: %+v", p)
	}
	if reflect.DeepEqual(f.snapshot(t), before) {
		t.Fatal("the successful merge changed nothing")
	}
}

package storetest

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

// Concurrent read-modify-write transactions never lose an update.
func testBackendSerializable(t *testing.T, newBackend Factory) {
	b := newBackend(t)
	put(t, b, "ser/n", "0", 0)
	errs := race(20, func(i int) error {
		return b.Update(t.Context(), func(tx store.Txn) error {
			raw, err := tx.Get("ser/n")
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(string(raw))
			if err != nil {
				return err
			}
			if err := tx.IndexAdd("ser/idx", strconv.Itoa(i)); err != nil {
				return err
			}
			return tx.Put("ser/n", []byte(strconv.Itoa(n+1)), 0)
		})
	})
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("Update: %v", err)
		}
	}
	wantValue(t, b, "ser/n", strconv.Itoa(ok))
	if got := indexMembers(t, b, "ser/idx", "", 0); len(got) != ok {
		t.Errorf("index has %d members after %d committed updates", len(got), ok)
	}
	if ok < len(errs)/2 {
		t.Errorf("only %d of %d concurrent updates committed", ok, len(errs))
	}
}

// A callback may run on reads that a concurrent commit has made stale (an
// optimistic backend finds out only at commit), but an error it returns
// must come from a consistent view: Update returns the callback's error
// only if the reads it saw were still current, and retries otherwise.
// Every writer keeps keys a and b equal; a reader that sees them differ
// and returns that error has been handed an inconsistent view.
func testBackendConsistentError(t *testing.T, newBackend Factory) {
	b := newBackend(t)
	put(t, b, "ce/a", "0", 0)
	put(t, b, "ce/b", "0", 0)
	errTorn := errors.New("a and b differ")
	errs := race(20, func(i int) error {
		for range 20 {
			err := b.Update(t.Context(), func(tx store.Txn) error {
				a, err := tx.Get("ce/a")
				if err != nil {
					return err
				}
				if i%2 == 1 { // readers fail when the invariant is broken
					time.Sleep(50 * time.Microsecond)
					bv, err := tx.Get("ce/b")
					if err != nil {
						return err
					}
					if string(a) != string(bv) {
						return errTorn
					}
					return nil
				}
				n, _ := strconv.Atoi(string(a))
				next := []byte(strconv.Itoa(n + 1))
				if err := tx.Put("ce/a", next, 0); err != nil {
					return err
				}
				return tx.Put("ce/b", next, 0)
			})
			if err != nil && !errors.Is(err, store.ErrConflict) {
				return err
			}
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
}

func testBackendPubSub(t *testing.T, newBackend Factory) {
	b := newBackend(t)
	type sub struct {
		msgs   chan string
		cancel func()
	}
	subscribe := func(channel string) sub {
		ctx, cancel := context.WithCancel(t.Context())
		t.Cleanup(cancel)
		s := sub{msgs: make(chan string, 16), cancel: cancel}
		err := b.Subscribe(ctx, channel, func(m string) { s.msgs <- m }, func() {})
		must(t, "Subscribe", err)
		return s
	}
	receive := func(s sub, want string) {
		t.Helper()
		select {
		case got := <-s.msgs:
			if got != want {
				t.Errorf("received %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no message %q within 5s", want)
		}
	}
	s1, s2 := subscribe("ps-revoke"), subscribe("ps-revoke")
	other := subscribe("ps-other")
	must(t, "Publish", b.Publish(t.Context(), "ps-other", "elsewhere"))
	must(t, "Publish", b.Publish(t.Context(), "ps-revoke", "m1"))
	receive(s1, "m1")
	receive(s2, "m1")
	receive(other, "elsewhere")
	must(t, "Publish", b.Publish(t.Context(), "ps-revoke", "m2"))
	receive(s1, "m2")
	receive(s2, "m2")

	// A subscription whose context ended gets nothing more.
	s1.cancel()
	time.Sleep(300 * time.Millisecond) // unsubscribing may take a moment
	must(t, "Publish", b.Publish(t.Context(), "ps-revoke", "m3"))
	receive(s2, "m3")
	time.Sleep(200 * time.Millisecond)
	select {
	case m := <-s1.msgs:
		t.Errorf("cancelled subscriber received %q", m)
	default:
	}
	select {
	case m := <-other.msgs:
		t.Errorf("subscriber of another channel received %q", m)
	default:
	}
}

func testBackendHealth(t *testing.T, newBackend Factory) {
	b := newBackend(t)
	must(t, "Ping", b.Ping(t.Context()))
	if b.Name() == "" {
		t.Errorf("Name() is empty")
	}
	n, err := b.GarbageCollect(t.Context(), time.Now())
	if err != nil || n < 0 {
		t.Errorf("GarbageCollect on an empty backend = %d, %v", n, err)
	}
}

package bolt

// Index and pub/sub tests; the shared helpers live in bolt_backend_test.go.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

func TestIndexOrderingAndPaging(t *testing.T) {
	ctx := context.Background()
	b := openTest(t, nil)
	members := []string{"b", "a", "ab", "c", "", "a\xff", "B", "aa"}
	err := b.Update(ctx, func(tx store.Txn) error {
		for _, m := range members {
			if err := tx.IndexAdd("i", m); err != nil {
				return err
			}
		}
		// Neighbouring indexes must not leak into "i".
		for _, idx := range []string{"", "h", "i2", "j", "ix"} {
			if err := tx.IndexAdd(idx, "zzz"); err != nil {
				return err
			}
		}
		if err := tx.IndexAdd("i", "a"); err != nil { // idempotent
			return err
		}
		return tx.IndexRemove("i", "missing") // idempotent
	})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(members)
	slices.Sort(want)

	rng := func(after string, limit int) []string {
		t.Helper()
		var got []string
		err := b.View(ctx, func(r store.Reader) error {
			var err error
			got, err = r.IndexRange("i", after, limit)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := rng("", 0); !slices.Equal(got, want) {
		t.Fatalf("all = %q, want %q", got, want)
	}
	if got := rng("", -1); !slices.Equal(got, want) {
		t.Fatalf("limit -1 = %q, want %q", got, want)
	}
	if got := rng("a", 2); !slices.Equal(got, []string{"aa", "ab"}) {
		t.Errorf("after a limit 2 = %q", got)
	}
	if got := rng("abc", 0); !slices.Equal(got, []string{"a\xff", "b", "c"}) {
		t.Errorf("after non-member abc = %q", got)
	}
	if got := rng("c", 0); len(got) != 0 {
		t.Errorf("after last = %q", got)
	}

	// Paging with limit 3 from the start walks every member once, in order
	// (the empty member comes first, on the first page).
	var paged []string
	after := ""
	for page := 0; ; page++ {
		got := rng(after, 3)
		if len(got) == 0 || page > 10 {
			break
		}
		paged = append(paged, got...)
		after = got[len(got)-1]
	}
	if !slices.Equal(paged, want) {
		t.Errorf("paged = %q, want %q", paged, want)
	}

	err = b.Update(ctx, func(tx store.Txn) error {
		if err := tx.IndexRemove("i", "ab"); err != nil {
			return err
		}
		if ok, _ := tx.IndexHas("i", "ab"); ok {
			return errors.New("removed member still present")
		}
		if ok, _ := tx.IndexHas("i", "zzz"); ok {
			return errors.New("member of another index visible")
		}
		for _, bad := range [][2]string{{"i\x00", "m"}, {"i", "m\x00"}} {
			if err := tx.IndexAdd(bad[0], bad[1]); err == nil {
				return fmt.Errorf("IndexAdd(%q, %q) accepted NUL", bad[0], bad[1])
			}
		}
		if _, err := tx.IndexRange("i", "a\x00", 0); err == nil {
			return errors.New("IndexRange accepted NUL in after")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPublishSubscribe(t *testing.T) {
	ctx := context.Background()
	b := openTest(t, nil)

	var mu sync.Mutex
	got := map[string][]string{}
	record := func(name string) func(string) {
		return func(msg string) { mu.Lock(); got[name] = append(got[name], msg); mu.Unlock() }
	}
	snapshot := func(name string) []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(got[name]) }

	ctx1, cancel1 := context.WithCancel(ctx)
	defer cancel1()
	ctx2, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	if err := b.Subscribe(ctx1, "revoke", record("one"), func() {}); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx2, "revoke", record("two"), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx, "other", record("other"), nil); err != nil {
		t.Fatal(err)
	}

	if err := b.Publish(ctx, "revoke", "sid1"); err != nil {
		t.Fatal(err)
	}
	// Delivery is synchronous: no waiting needed.
	for _, name := range []string{"one", "two"} {
		if m := snapshot(name); !slices.Equal(m, []string{"sid1"}) {
			t.Errorf("%s got %q", name, m)
		}
	}
	if m := snapshot("other"); len(m) != 0 {
		t.Errorf("other channel got %q", m)
	}

	cancel1()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		n := len(b.subs["revoke"])
		b.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscriber not removed after cancel: %d left", n)
		}
		time.Sleep(time.Millisecond)
	}
	if err := b.Publish(ctx, "revoke", "sid2"); err != nil {
		t.Fatal(err)
	}
	if m := snapshot("one"); !slices.Equal(m, []string{"sid1"}) {
		t.Errorf("cancelled subscriber got %q", m)
	}
	if m := snapshot("two"); !slices.Equal(m, []string{"sid1", "sid2"}) {
		t.Errorf("two got %q", m)
	}

	// A callback may publish (re-entrancy must not deadlock).
	if err := b.Subscribe(ctx, "chain", func(msg string) { _ = b.Publish(ctx, "other", "via-"+msg) }, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "chain", "x"); err != nil {
		t.Fatal(err)
	}
	if m := snapshot("other"); !slices.Equal(m, []string{"via-x"}) {
		t.Errorf("other got %q", m)
	}

	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Subscribe(done, "revoke", record("late"), nil); err == nil {
		t.Error("Subscribe with a finished context succeeded")
	}
}

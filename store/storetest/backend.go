package storetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

func put(t *testing.T, b store.Backend, key, value string, ttl time.Duration) {
	t.Helper()
	err := b.Update(t.Context(), func(tx store.Txn) error { return tx.Put(key, []byte(value), ttl) })
	must(t, "Put "+key, err)
}

// wantValue checks a key through both read paths: Backend.Get and a View.
func wantValue(t *testing.T, b store.Backend, key, want string) {
	t.Helper()
	got, err := b.Get(t.Context(), key)
	if err != nil || string(got) != want {
		t.Errorf("Get(%q) = %q, %v; want %q", key, got, err, want)
	}
	err = b.View(t.Context(), func(tx store.Reader) error {
		got, err := tx.Get(key)
		if err != nil || string(got) != want {
			t.Errorf("View Get(%q) = %q, %v; want %q", key, got, err, want)
		}
		return nil
	})
	must(t, "View", err)
}

func wantMissing(t *testing.T, b store.Backend, key string) {
	t.Helper()
	if got, err := b.Get(t.Context(), key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
	err := b.View(t.Context(), func(tx store.Reader) error {
		if got, err := tx.Get(key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("View Get(%q) = %q, %v; want ErrNotFound", key, got, err)
		}
		return nil
	})
	must(t, "View", err)
}

func indexMembers(t *testing.T, b store.Backend, index, after string, limit int) []string {
	t.Helper()
	var out []string
	err := b.View(t.Context(), func(tx store.Reader) (err error) {
		out, err = tx.IndexRange(index, after, limit)
		return err
	})
	must(t, "IndexRange "+index, err)
	return out
}

func testBackendKV(t *testing.T, newBackend Factory) {
	b := newBackend(t)
	ctx := t.Context()
	wantMissing(t, b, "kv/missing")

	put(t, b, "kv/a", "one", 0)
	wantValue(t, b, "kv/a", "one")
	put(t, b, "kv/a", "two", 0)
	wantValue(t, b, "kv/a", "two")

	// Values are opaque bytes: empty and binary values survive.
	put(t, b, "kv/empty", "", 0)
	if got, err := b.Get(ctx, "kv/empty"); err != nil || len(got) != 0 {
		t.Errorf("Get(empty value) = %q, %v", got, err)
	}
	bin := []byte{0, 1, 2, 0xff, '\n', 0}
	must(t, "Put binary", b.Update(ctx, func(tx store.Txn) error { return tx.Put("kv/bin", bin, 0) }))
	if got, err := b.Get(ctx, "kv/bin"); err != nil || !bytes.Equal(got, bin) {
		t.Errorf("Get(binary) = %v, %v; want %v", got, err, bin)
	}
	// Keys with unusual bytes are distinct keys.
	put(t, b, "kv/x y/é", "unicode", 0)
	wantValue(t, b, "kv/x y/é", "unicode")
	wantMissing(t, b, "kv/x y")

	must(t, "Delete", b.Update(ctx, func(tx store.Txn) error { return tx.Delete("kv/a") }))
	wantMissing(t, b, "kv/a")
	must(t, "Delete missing", b.Update(ctx, func(tx store.Txn) error { return tx.Delete("kv/never") }))
	wantValue(t, b, "kv/bin", string(bin))
}

func testBackendTTL(t *testing.T, newBackend Factory) {
	b := newBackend(t)
	ctx := t.Context()
	const ttl = 400 * time.Millisecond
	put(t, b, "ttl/short", "v", ttl)
	put(t, b, "ttl/kept", "v", ttl)
	put(t, b, "ttl/kept", "v2", 0) // a Put with ttl 0 keeps the key until deleted
	put(t, b, "ttl/later", "v", 0)
	put(t, b, "ttl/later", "v2", ttl) // and a Put with a ttl makes a kept key expire
	put(t, b, "ttl/long", "v", time.Hour)
	wantValue(t, b, "ttl/short", "v")

	deadline := time.Now().Add(10 * time.Second)
	for _, key := range []string{"ttl/short", "ttl/later"} {
		for {
			_, err := b.Get(ctx, key)
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			must(t, "Get "+key, err)
			if time.Now().After(deadline) {
				t.Fatalf("%s still there long after its %v TTL", key, ttl)
			}
			time.Sleep(25 * time.Millisecond)
		}
		wantMissing(t, b, key)
	}
	if _, err := b.GarbageCollect(ctx, time.Now()); err != nil {
		t.Fatalf("GarbageCollect: %v", err)
	}
	wantMissing(t, b, "ttl/short")
	wantValue(t, b, "ttl/kept", "v2")
	wantValue(t, b, "ttl/long", "v")

	// An expired key is free for create-style writes inside a transaction.
	err := b.Update(ctx, func(tx store.Txn) error {
		if _, err := tx.Get("ttl/short"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Txn Get of expired key: %v, want ErrNotFound", err)
		}
		return tx.Put("ttl/short", []byte("again"), 0)
	})
	must(t, "Update", err)
	wantValue(t, b, "ttl/short", "again")
}

func testBackendReadYourWrites(t *testing.T, newBackend Factory) {
	b := newBackend(t)
	put(t, b, "ryw/old", "old", 0)
	err := b.Update(t.Context(), func(tx store.Txn) error {
		if err := tx.Put("ryw/a", []byte("1"), 0); err != nil {
			return err
		}
		if got, err := tx.Get("ryw/a"); err != nil || string(got) != "1" {
			t.Errorf("Get after Put in the same Update = %q, %v", got, err)
		}
		if err := tx.Put("ryw/a", []byte("2"), time.Hour); err != nil {
			return err
		}
		if got, err := tx.Get("ryw/a"); err != nil || string(got) != "2" {
			t.Errorf("Get after second Put = %q, %v", got, err)
		}
		if err := tx.Delete("ryw/old"); err != nil {
			return err
		}
		if _, err := tx.Get("ryw/old"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get after Delete in the same Update: %v, want ErrNotFound", err)
		}
		for _, m := range []string{"m2", "m1", "m3"} {
			if err := tx.IndexAdd("ryw/idx", m); err != nil {
				return err
			}
		}
		if err := tx.IndexRemove("ryw/idx", "m3"); err != nil {
			return err
		}
		got, err := tx.IndexRange("ryw/idx", "", 0)
		if err != nil || !slices.Equal(got, []string{"m1", "m2"}) {
			t.Errorf("IndexRange in the same Update = %v, %v; want [m1 m2]", got, err)
		}
		if has, err := tx.IndexHas("ryw/idx", "m1"); err != nil || !has {
			t.Errorf("IndexHas(m1) = %v, %v", has, err)
		}
		if has, err := tx.IndexHas("ryw/idx", "m3"); err != nil || has {
			t.Errorf("IndexHas(removed m3) = %v, %v", has, err)
		}
		return nil
	})
	must(t, "Update", err)
	wantValue(t, b, "ryw/a", "2")
	wantMissing(t, b, "ryw/old")
	if got := indexMembers(t, b, "ryw/idx", "", 0); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Errorf("index after commit = %v", got)
	}
}

func testBackendRollback(t *testing.T, newBackend Factory) {
	b := newBackend(t)
	put(t, b, "rb/kept", "original", 0)
	must(t, "IndexAdd", b.Update(t.Context(), func(tx store.Txn) error { return tx.IndexAdd("rb/idx", "a") }))
	boom := errors.New("boom")
	err := b.Update(t.Context(), func(tx store.Txn) error {
		for _, op := range []error{
			tx.Put("rb/new", []byte("x"), 0),
			tx.Put("rb/kept", []byte("changed"), 0),
			tx.Put("rb/ttl", []byte("x"), time.Hour),
			tx.IndexAdd("rb/idx", "b"),
			tx.IndexRemove("rb/idx", "a"),
		} {
			if op != nil {
				return op
			}
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want the callback's error", err)
	}
	wantMissing(t, b, "rb/new")
	wantMissing(t, b, "rb/ttl")
	wantValue(t, b, "rb/kept", "original")
	if got := indexMembers(t, b, "rb/idx", "", 0); !slices.Equal(got, []string{"a"}) {
		t.Errorf("index after rollback = %v, want [a]", got)
	}
	// A sentinel error comes back unchanged, so errors.Is works for callers.
	err = b.Update(t.Context(), func(tx store.Txn) error { return store.ErrAlreadyExists })
	wantErr(t, "Update returning ErrAlreadyExists", err, store.ErrAlreadyExists)
}

func testBackendIndexRange(t *testing.T, newBackend Factory) {
	b := newBackend(t)
	members := []string{"b", "a", "c", "aa", "ab", "B", "0", "z", "a-b", "é"}
	err := b.Update(t.Context(), func(tx store.Txn) error {
		for _, m := range members {
			if err := tx.IndexAdd("ir/idx", m); err != nil {
				return err
			}
		}
		// Idempotent, and a neighbour index whose name extends this one's
		// stays apart.
		if err := tx.IndexAdd("ir/idx", "a"); err != nil {
			return err
		}
		if err := tx.IndexAdd("ir/idx2", "zz"); err != nil {
			return err
		}
		return tx.IndexAdd("ir/idx/sub", "yy")
	})
	must(t, "IndexAdd", err)
	want := slices.Clone(members)
	slices.Sort(want) // byte order
	if got := indexMembers(t, b, "ir/idx", "", 0); !slices.Equal(got, want) {
		t.Fatalf("IndexRange = %v, want %v", got, want)
	}
	var paged []string
	after := ""
	for page := 0; ; page++ {
		got := indexMembers(t, b, "ir/idx", after, 3)
		if len(got) > 3 {
			t.Fatalf("page of %d members with limit 3", len(got))
		}
		if len(got) == 0 {
			break
		}
		paged = append(paged, got...)
		after = got[len(got)-1]
		if page > len(want) {
			t.Fatalf("paging does not end")
		}
	}
	if !slices.Equal(paged, want) {
		t.Errorf("paged = %v, want %v", paged, want)
	}
	// "after" need not be a member: the range starts strictly after it.
	if got := indexMembers(t, b, "ir/idx", "ab0", 2); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("IndexRange after ab0 = %v, want [b c]", got)
	}
	if got := indexMembers(t, b, "ir/idx", "é", 0); len(got) != 0 {
		t.Errorf("IndexRange after the last member = %v", got)
	}
	if got := indexMembers(t, b, "ir/none", "", 0); len(got) != 0 {
		t.Errorf("IndexRange of a missing index = %v", got)
	}
	err = b.View(t.Context(), func(tx store.Reader) error {
		for _, c := range []struct {
			index, member string
			want          bool
		}{{"ir/idx", "aa", true}, {"ir/idx", "zz", false}, {"ir/idx2", "zz", true}, {"ir/none", "a", false}} {
			if has, err := tx.IndexHas(c.index, c.member); err != nil || has != c.want {
				t.Errorf("IndexHas(%q, %q) = %v, %v; want %v", c.index, c.member, has, err, c.want)
			}
		}
		return nil
	})
	must(t, "View", err)
	must(t, "IndexRemove", b.Update(t.Context(), func(tx store.Txn) error {
		if err := tx.IndexRemove("ir/idx", "aa"); err != nil {
			return err
		}
		return tx.IndexRemove("ir/idx", "never-there")
	}))
	if got := indexMembers(t, b, "ir/idx", "a", 1); !slices.Equal(got, []string{"a-b"}) {
		t.Errorf("after IndexRemove: %v", got)
	}
}

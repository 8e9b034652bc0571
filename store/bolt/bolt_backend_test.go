package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssogate/ssogate/store"
)

// clock is an injectable, goroutine-safe test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openTest(t *testing.T, now func() time.Time) *Backend {
	t.Helper()
	b, err := Open(filepath.Join(t.TempDir(), "ssogate.db"), Options{Now: now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func put(t *testing.T, b *Backend, key, val string, ttl time.Duration) {
	t.Helper()
	err := b.Update(context.Background(), func(tx store.Txn) error { return tx.Put(key, []byte(val), ttl) })
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

func TestOpenCreatesPrivateFileAndRefusesSecondOpener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "ssogate.db")
	b, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer b.Close()
	if b.Name() != "bolt" {
		t.Errorf("Name = %q", b.Name())
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", p, got, want)
		}
	}

	start := time.Now()
	b2, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		b2.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("second Open waited %s, want about the 100ms timeout", waited)
	}
	if !errors.Is(err, bbolt.ErrTimeout) {
		t.Errorf("error does not wrap bbolt.ErrTimeout: %v", err)
	}
	for _, want := range []string{"in use by another process", "redis", path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	// Once the first handle is closed the file opens again, data intact.
	put(t, b, "k", "v", 0)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b3, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer b3.Close()
	if v, err := b3.Get(context.Background(), "k"); err != nil || string(v) != "v" {
		t.Fatalf("after reopen Get = %q, %v", v, err)
	}
}

func TestTTLExpiryWithInjectedClock(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := openTest(t, clk.Now)

	put(t, b, "short", "s", 10*time.Second)
	put(t, b, "forever", "f", 0)
	put(t, b, "renewed", "r", 10*time.Second)
	put(t, b, "renewed", "r2", 0) // overwriting without a TTL must clear the old deadline
	put(t, b, "deleted", "d", 10*time.Second)
	if err := b.Update(ctx, func(tx store.Txn) error { return tx.Delete("deleted") }); err != nil {
		t.Fatal(err)
	}

	clk.Add(10*time.Second - 1)
	if v, err := b.Get(ctx, "short"); err != nil || string(v) != "s" {
		t.Fatalf("before deadline Get = %q, %v", v, err)
	}
	if n, err := b.GarbageCollect(ctx, clk.Now()); err != nil || n != 0 {
		t.Fatalf("early GarbageCollect = %d, %v; want 0", n, err)
	}

	clk.Add(1) // exactly at the deadline: expired, as in Redis
	if _, err := b.Get(ctx, "short"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired Get err = %v, want ErrNotFound", err)
	}
	err := b.Update(ctx, func(tx store.Txn) error {
		if _, err := tx.Get("short"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("expired Txn.Get err = %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = b.View(ctx, func(r store.Reader) error {
		if _, err := r.Get("short"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("expired View Get err = %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if n, err := b.GarbageCollect(ctx, clk.Now()); err != nil || n != 1 {
		t.Fatalf("GarbageCollect = %d, %v; want 1", n, err)
	}
	if n, err := b.GarbageCollect(ctx, clk.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("second GarbageCollect = %d, %v; want 0", n, err)
	}
	for key, want := range map[string]string{"forever": "f", "renewed": "r2"} {
		if v, err := b.Get(ctx, key); err != nil || string(v) != want {
			t.Errorf("Get(%q) = %q, %v; want %q", key, v, err, want)
		}
	}
	// The value is really gone, not just hidden: an earlier clock cannot see it.
	clk.Add(-time.Hour)
	if _, err := b.Get(ctx, "short"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("collected key still readable: %v", err)
	}

	err = b.Update(ctx, func(tx store.Txn) error { return tx.Put("neg", nil, -time.Second) })
	if err == nil {
		t.Error("negative ttl accepted")
	}
}

func TestGarbageCollectManyKeysInBatches(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_900_000_000, 0)}
	b := openTest(t, clk.Now)
	const n = gcBatch*2 + 17
	err := b.Update(ctx, func(tx store.Txn) error {
		for i := range n {
			if err := tx.Put(fmt.Sprintf("k%05d", i), []byte("x"), time.Minute); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.GarbageCollect(ctx, clk.Now().Add(time.Minute)); err != nil || got != n {
		t.Fatalf("GarbageCollect = %d, %v; want %d", got, err, n)
	}
}

func TestUpdateRollsBackOnError(t *testing.T) {
	ctx := context.Background()
	b := openTest(t, nil)
	put(t, b, "existing", "old", 0)

	err := b.Update(ctx, func(tx store.Txn) error {
		if err := tx.Put("new", []byte("v"), 0); err != nil {
			return err
		}
		if err := tx.Put("existing", []byte("overwritten"), time.Hour); err != nil {
			return err
		}
		if err := tx.IndexAdd("idx", "m"); err != nil {
			return err
		}
		// Reads see the transaction's own writes.
		if v, err := tx.Get("new"); err != nil || string(v) != "v" {
			return fmt.Errorf("own write not visible: %q, %v", v, err)
		}
		if ok, err := tx.IndexHas("idx", "m"); err != nil || !ok {
			return fmt.Errorf("own index add not visible: %v, %v", ok, err)
		}
		return fmt.Errorf("creating thing: %w", store.ErrAlreadyExists)
	})
	if !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("Update err = %v, want ErrAlreadyExists", err)
	}

	if _, err := b.Get(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rolled-back key exists: %v", err)
	}
	if v, err := b.Get(ctx, "existing"); err != nil || string(v) != "old" {
		t.Errorf("existing = %q, %v; want old", v, err)
	}
	err = b.View(ctx, func(r store.Reader) error {
		if ok, err := r.IndexHas("idx", "m"); err != nil || ok {
			return fmt.Errorf("rolled-back index member present: %v, %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	// The rolled-back TTL must not make GarbageCollect delete the old value.
	if n, err := b.GarbageCollect(ctx, time.Now().Add(2*time.Hour)); err != nil || n != 0 {
		t.Errorf("GarbageCollect = %d, %v; want 0", n, err)
	}
}

func TestOperationsAfterCloseAreUnavailable(t *testing.T) {
	ctx := context.Background()
	b := openTest(t, nil)
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping on open DB: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, getErr := b.Get(ctx, "k")
	_, gcErr := b.GarbageCollect(ctx, time.Now())
	errs := map[string]error{
		"Ping":           b.Ping(ctx),
		"Get":            getErr,
		"Update":         b.Update(ctx, func(store.Txn) error { return nil }),
		"View":           b.View(ctx, func(store.Reader) error { return nil }),
		"Publish":        b.Publish(ctx, "c", "m"),
		"Subscribe":      b.Subscribe(ctx, "c", func(string) {}, nil),
		"GarbageCollect": gcErr,
	}
	for op, err := range errs {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s after Close: err = %v, want ErrUnavailable", op, err)
		} else if !strings.HasPrefix(err.Error(), "bolt: ") {
			t.Errorf("%s error lacks context: %v", op, err)
		}
	}
}

package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ssogate/ssogate/internal/redistest"
	"github.com/ssogate/ssogate/store"
)

func open(t *testing.T, srv *redistest.Server, prefix string) *Backend {
	t.Helper()
	b, err := Open(srv.URL(), Options{KeyPrefix: prefix})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func rawClient(t *testing.T, srv *redistest.Server) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// eventually polls cond every 10ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOpenURLs(t *testing.T) {
	good := []struct {
		url     string
		cluster bool
	}{
		{"redis://127.0.0.1:6379/0", false},
		{"redis://localhost", false},
		{"redis://user:p%40ss@localhost:6379/2", false},
		{"rediss://cache.example.com:6380", false},
		{"redis://h:6379/0?dial_timeout=3s&pool_size=20", false},
		{"REDIS://h:6379", false},
		{"redis+sentinel://u:pw@s1:26379,s2:26380/mymaster/1", false},
		{"redis+sentinel://s1/mymaster", false},
		{"rediss+sentinel://s1:26379,[::1]:26380/m?sentinel_password=x", false},
		{"redis+cluster://u:pw@n1:7000,n2:7001", true},
		{"redis+cluster://n1:7000/", true},
		{"rediss+cluster://n1:7000,n2?dial_timeout=3s", true},
	}
	for _, tc := range good {
		b, err := Open(tc.url, Options{})
		if err != nil {
			t.Errorf("Open(%q): %v", tc.url, err)
			continue
		}
		if _, isCluster := b.client.(*goredis.ClusterClient); isCluster != tc.cluster {
			t.Errorf("Open(%q): cluster client = %v, want %v", tc.url, isCluster, tc.cluster)
		}
		if tc.cluster != (len(b.watchKeys) == 1) {
			t.Errorf("Open(%q): watchKeys = %q", tc.url, b.watchKeys)
		}
		_ = b.Close()
	}

	// The secret: no error text may contain any part of it.
	const pw = "hunter2Zebra"
	bad := []string{
		"",
		"localhost:6379",
		"//u:" + pw + "@h:6379",
		"http://u:" + pw + "@h:6379",
		"unix:///tmp/redis.sock",
		"redis://u:" + pw + "@h:notaport",
		"redis://u:" + pw + "@h:6379/abc",
		"redis://u:" + pw + "@h:6379/-1",
		"redis://u:" + pw + "@h:6379/0/1",
		"redis://u:hunter2/Zebra@h:6379/0",
		"redis://u:hunter2/Zebra@h:6379",
		"redis://u:hunter2?Zebra@h:6379",
		"redis://u:hunter2%zzZebra@h",
		"redis://u:hunter2 Zebra@h",
		"redis://u:" + pw + "@h:6379/0?bogus=1",
		"redis://u:" + pw + "@h:6379/0?dial_timeout=" + pw,
		"redis://u:" + pw + "@h:6379/0?password=" + pw,
		"redis+sentinel://u:" + pw + "@s1:26379,s2:26379",
		"redis+sentinel://u:" + pw + "@s1:26379,,s2/m",
		"redis+sentinel://u:" + pw + "@s1:x/m",
		"redis+sentinel://u:hunter2/Zebra@s1/m",
		"redis+sentinel://u:hunter2%zzZebra@s1/m",
		"redis+sentinel://u:" + pw + "@s1/m/notadb",
		"redis+sentinel://u:" + pw + "@s1/m/0/extra",
		"redis+sentinel://u:" + pw + "@s1/m?sentinel_password=" + pw + "&bogus=1",
		"redis+sentinel://u:" + pw + "@s1/m?dial_timeout=" + pw,
		"redis+sentinel://u:" + pw + "@s1/m#frag",
		"redis+cluster://u:" + pw + "@n1:7000/3",
		"redis+cluster://u:" + pw + "@",
		"redis+cluster://u:" + pw + "@n1:99999",
		"redis+cluster://u:" + pw + "@n1:7000?max_redirects=" + pw,
		"redis+cluster://u:" + pw + "@::1:7000",
	}
	for _, u := range bad {
		b, err := Open(u, Options{})
		if err == nil {
			_ = b.Close()
			t.Errorf("Open(%q) succeeded, want error", u)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "hunter") || strings.Contains(msg, "Zebra") {
			t.Errorf("Open(%q) error leaks the password: %s", u, msg)
		}
		if !strings.HasPrefix(msg, "redis: ") {
			t.Errorf("Open(%q) error lacks context: %s", u, msg)
		}
	}

	for _, prefix := range []string{":", "{x}:", "a}b"} {
		if b, err := Open("redis://localhost", Options{KeyPrefix: prefix}); err == nil {
			_ = b.Close()
			t.Errorf("Open with KeyPrefix %q succeeded, want error", prefix)
		}
	}
}

func TestParsedOptions(t *testing.T) {
	o, err := parseStandalone("rediss://us%3Aer:p%40ss@cache:6380/3?pool_size=7")
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr != "cache:6380" || o.DB != 3 || o.Username != "us:er" || o.Password != "p@ss" ||
		o.PoolSize != 7 || o.TLSConfig == nil || o.TLSConfig.ServerName != "cache" {
		t.Errorf("standalone options: %+v", o)
	}

	f, err := parseSentinel("redis", "u:p%2Fw@s1:26379,s2,[::1]:26380/my%20master/2?sentinel_password=sp")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.SentinelAddrs, []string{"s1:26379", "s2:26379", "[::1]:26380"}) ||
		f.MasterName != "my master" || f.DB != 2 || f.Username != "u" || f.Password != "p/w" ||
		f.SentinelPassword != "sp" || f.TLSConfig != nil {
		t.Errorf("sentinel options: %+v", f)
	}

	c, err := parseCluster("rediss", "u:pw@n1:7000,n2:7001,n3?read_only=true")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Addrs, []string{"n1:7000", "n2:7001", "n3:6379"}) || c.Username != "u" ||
		c.Password != "pw" || !c.ReadOnly || c.TLSConfig == nil || c.TLSConfig.ServerName != "" {
		t.Errorf("cluster options: %+v", c)
	}
}

func TestKeyLayoutAndBasics(t *testing.T) {
	srv := redistest.Start(t)
	b := open(t, srv, "")
	raw := rawClient(t, srv)
	ctx := context.Background()

	if b.Name() != "redis" {
		t.Errorf("Name() = %q", b.Name())
	}
	if n, err := b.GarbageCollect(ctx, time.Now()); n != 0 || err != nil {
		t.Errorf("GarbageCollect = %d, %v", n, err)
	}
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if _, err := b.Get(ctx, "session/abc"); err != store.ErrNotFound {
		t.Fatalf("Get missing = %v, want ErrNotFound", err)
	}
	err := b.Update(ctx, func(tx store.Txn) error {
		if err := tx.Put("session/abc", []byte("v1"), 0); err != nil {
			return err
		}
		return tx.IndexAdd("idx/usersess/u1", "abc")
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if v, err := raw.Get(ctx, "{ssogate}:session/abc").Result(); err != nil || v != "v1" {
		t.Errorf("raw value = %q, %v", v, err)
	}
	if ttl := raw.PTTL(ctx, "{ssogate}:session/abc").Val(); ttl != -1 {
		t.Errorf("ttl 0 should persist, PTTL = %v", ttl)
	}
	if m, err := raw.ZRange(ctx, "{ssogate}#idx/usersess/u1", 0, -1).Result(); err != nil || !slices.Equal(m, []string{"abc"}) {
		t.Errorf("raw index = %q, %v", m, err)
	}
	if v, err := b.Get(ctx, "session/abc"); err != nil || string(v) != "v1" {
		t.Errorf("Get = %q, %v", v, err)
	}
	if _, err := b.Get(ctx, "idx/usersess/u1"); err != store.ErrNotFound {
		t.Errorf("index set visible as a value: %v", err)
	}

	// Another prefix is another directory.
	other := open(t, srv, "tenant2")
	if _, err := other.Get(ctx, "session/abc"); err != store.ErrNotFound {
		t.Errorf("other prefix sees key: %v", err)
	}
}

func TestWatchConflictCounter(t *testing.T) {
	srv := redistest.Start(t)
	b := open(t, srv, "")
	ctx := context.Background()
	var calls atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- b.Update(ctx, func(tx store.Txn) error {
				calls.Add(1)
				n := 0
				v, err := tx.Get("counter")
				switch {
				case err == nil:
					if n, err = strconv.Atoi(string(v)); err != nil {
						return err
					}
				case !errors.Is(err, store.ErrNotFound):
					return err
				}
				return tx.Put("counter", []byte(strconv.Itoa(n+1)), 0)
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Update: %v", err)
		}
	}
	v, err := b.Get(ctx, "counter")
	if err != nil || string(v) != "20" {
		t.Fatalf("counter = %q, %v; want 20", v, err)
	}
	t.Logf("20 increments took %d fn calls", calls.Load())
}

func TestConflictGivesUp(t *testing.T) {
	srv := redistest.Start(t)
	b := open(t, srv, "")
	raw := rawClient(t, srv)
	ctx := context.Background()
	calls := 0
	err := b.Update(ctx, func(tx store.Txn) error {
		calls++
		if _, err := tx.Get("k"); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// Someone else writes what we read, every time.
		if err := raw.Set(ctx, "{ssogate}:k", calls, 0).Err(); err != nil {
			return err
		}
		return tx.Put("k", []byte("mine"), 0)
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Update = %v, want ErrConflict", err)
	}
	if calls != maxAttempts {
		t.Errorf("fn called %d times, want %d", calls, maxAttempts)
	}
	if v, _ := b.Get(ctx, "k"); string(v) == "mine" {
		t.Error("a conflicting transaction was applied")
	}

	// A read-only Update is checked too: a change to what it read retries it.
	calls = 0
	err = b.Update(ctx, func(tx store.Txn) error {
		calls++
		if _, err := tx.Get("k"); err != nil {
			return err
		}
		if calls == 1 {
			return raw.Set(ctx, "{ssogate}:k", "changed", 0).Err()
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Errorf("read-only Update: err %v, %d calls; want nil, 2", err, calls)
	}
}

func TestReadYourWrites(t *testing.T) {
	srv := redistest.Start(t)
	b := open(t, srv, "")
	ctx := context.Background()
	const idx = "idx/test"
	err := b.Update(ctx, func(tx store.Txn) error {
		for _, m := range []string{"b", "d", "f"} {
			if err := tx.IndexAdd(idx, m); err != nil {
				return err
			}
		}
		return tx.Put("a", []byte("old"), 0)
	})
	if err != nil {
		t.Fatal(err)
	}

	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	err = b.Update(ctx, func(tx store.Txn) error {
		if _, err := tx.Get("k"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(k) before Put = %v", err)
		}
		_ = tx.Put("k", []byte("new"), 0)
		v, err := tx.Get("k")
		check("Get(k) after Put", string(v)+fmt.Sprint(err), "new<nil>")
		_ = tx.Delete("a")
		if _, err := tx.Get("a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(a) after Delete = %v", err)
		}
		_ = tx.Put("a", []byte("again"), time.Hour)
		v, _ = tx.Get("a")
		check("Get(a) after Delete+Put", string(v), "again")

		_ = tx.IndexRemove(idx, "d")
		_ = tx.IndexAdd(idx, "c")
		_ = tx.IndexAdd(idx, "g")
		_ = tx.IndexAdd(idx, "b")
		for _, q := range []struct {
			after string
			limit int
			want  []string
		}{
			{"", 0, []string{"b", "c", "f", "g"}},
			{"", 3, []string{"b", "c", "f"}},
			{"b", 2, []string{"c", "f"}},
			{"c", 1, []string{"f"}},
			{"f", 0, []string{"g"}},
			{"g", 0, []string{}},
		} {
			got, err := tx.IndexRange(idx, q.after, q.limit)
			if err != nil {
				return err
			}
			check(fmt.Sprintf("IndexRange(after %q, limit %d)", q.after, q.limit), got, q.want)
		}
		for m, want := range map[string]bool{"b": true, "c": true, "d": false, "f": true, "z": false} {
			has, err := tx.IndexHas(idx, m)
			if err != nil {
				return err
			}
			check("IndexHas("+m+")", has, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = b.View(ctx, func(r store.Reader) error {
		got, err := r.IndexRange(idx, "", 0)
		check("committed index", got, []string{"b", "c", "f", "g"})
		v, _ := r.Get("a")
		check("committed a", string(v), "again")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestIndexRangeMerge checks buffered index changes against a model for
// many random sets, cursors and limits.
func TestIndexRangeMerge(t *testing.T) {
	srv := redistest.Start(t)
	b := open(t, srv, "")
	ctx := context.Background()
	errDiscard := errors.New("discard")
	rng := rand.New(rand.NewPCG(1, 2))
	letters := "abcdefghij"
	for round := range 30 {
		idx := fmt.Sprintf("idx/%d", round)
		stored := map[string]bool{}
		err := b.Update(ctx, func(tx store.Txn) error {
			for i := range letters {
				if rng.IntN(2) == 0 {
					stored[letters[i:i+1]] = true
					_ = tx.IndexAdd(idx, letters[i:i+1])
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = b.Update(ctx, func(tx store.Txn) error {
			model := map[string]bool{}
			for m := range stored {
				model[m] = true
			}
			for range 6 {
				i := rng.IntN(len(letters))
				m := letters[i : i+1]
				if rng.IntN(4) == 0 {
					m += "d" // sorts between single letters
				}
				if rng.IntN(2) == 0 {
					_ = tx.IndexAdd(idx, m)
					model[m] = true
				} else {
					_ = tx.IndexRemove(idx, m)
					delete(model, m)
				}
			}
			all := make([]string, 0, len(model))
			for m := range model {
				all = append(all, m)
			}
			slices.Sort(all)
			for _, after := range []string{"", "a", "b", "c", "cd", "e", "h", "j", "z"} {
				for limit := range 6 {
					want := []string{}
					for _, m := range all {
						if after == "" || m > after {
							want = append(want, m)
						}
					}
					if limit > 0 && len(want) > limit {
						want = want[:limit]
					}
					got, err := tx.IndexRange(idx, after, limit)
					if err != nil {
						return err
					}
					if !slices.Equal(got, want) {
						t.Errorf("round %d: IndexRange(after %q, limit %d) = %q, want %q (stored %v, model %q)",
							round, after, limit, got, want, stored, all)
					}
				}
			}
			return errDiscard
		})
		if err != errDiscard {
			t.Fatalf("Update = %v, want errDiscard unchanged", err)
		}
	}
}

func TestFnErrorWritesNothing(t *testing.T) {
	srv := redistest.Start(t)
	b := open(t, srv, "")
	ctx := context.Background()
	boom := fmt.Errorf("boom: %w", store.ErrAlreadyExists)
	err := b.Update(ctx, func(tx store.Txn) error {
		_ = tx.Put("x", []byte("1"), 0)
		_ = tx.IndexAdd("idx/x", "x")
		return boom
	})
	if err != boom || !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("Update = %v, want boom unchanged", err)
	}
	if _, err := b.Get(ctx, "x"); err != store.ErrNotFound {
		t.Errorf("Get(x) = %v, want ErrNotFound", err)
	}
	_ = b.View(ctx, func(r store.Reader) error {
		if got, err := r.IndexRange("idx/x", "", 0); err != nil || len(got) != 0 {
			t.Errorf("index after failed Update = %q, %v", got, err)
		}
		return nil
	})
}

func TestTTL(t *testing.T) {
	srv := redistest.Start(t)
	b := open(t, srv, "")
	raw := rawClient(t, srv)
	ctx := context.Background()
	put := func(key string, ttl time.Duration) {
		t.Helper()
		if err := b.Update(ctx, func(tx store.Txn) error { return tx.Put(key, []byte("v"), ttl) }); err != nil {
			t.Fatal(err)
		}
	}
	put("short", 50*time.Millisecond)
	if _, err := b.Get(ctx, "short"); err != nil {
		t.Fatalf("Get right after Put: %v", err)
	}
	eventually(t, 3*time.Second, "key to expire", func() bool {
		_, err := b.Get(ctx, "short")
		return errors.Is(err, store.ErrNotFound)
	})

	put("long", time.Hour)
	if ttl := raw.PTTL(ctx, "{ssogate}:long").Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("PTTL = %v, want about 1h", ttl)
	}
	put("long", 0) // rewriting without a ttl makes the key permanent
	if ttl := raw.PTTL(ctx, "{ssogate}:long").Val(); ttl != -1 {
		t.Errorf("PTTL after ttl-0 Put = %v, want -1 (no expiry)", ttl)
	}
	err := b.Update(ctx, func(tx store.Txn) error { return tx.Put("neg", []byte("v"), -time.Second) })
	if err == nil {
		t.Error("negative ttl accepted")
	}
}

func TestPubSub(t *testing.T) {
	srv := redistest.Start(t)
	pub := open(t, srv, "")
	sub := open(t, srv, "")
	other := open(t, srv, "other:")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	got := make(chan string, 10)
	if err := sub.Subscribe(ctx, "revoke", func(m string) { got <- m }, func() { t.Error("unexpected onReset") }); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	otherGot := make(chan string, 10)
	if err := other.Subscribe(ctx, "revoke", func(m string) { otherGot <- m }, nil); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}

	if err := pub.Publish(ctx, "revoke", "sid-1"); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	select {
	case m := <-got:
		if m != "sid-1" {
			t.Fatalf("got %q, want sid-1", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("message not delivered")
	}
	// Published after sid-1 on the same server, so if "other" had seen
	// sid-1 it would have arrived first.
	if err := other.Publish(ctx, "revoke", "other-1"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-otherGot:
		if m != "other-1" {
			t.Fatalf("other prefix received %q, want only its own other-1", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("other prefix: message not delivered")
	}

	// After ctx ends, nothing more is delivered.
	cancel()
	eventually(t, 5*time.Second, "subscription to end", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.subs) == 0
	})
}

func TestOutageAndRecovery(t *testing.T) {
	srv := redistest.Start(t)
	b := open(t, srv, "")
	pub := open(t, srv, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if err := b.Update(ctx, func(tx store.Txn) error { return tx.Put("k", []byte("v"), 0) }); err != nil {
		t.Fatal(err)
	}
	var resets atomic.Int32
	got := make(chan string, 10)
	if err := b.Subscribe(ctx, "c", func(m string) { got <- m }, func() { resets.Add(1) }); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	start := time.Now()
	opCtx, opCancel := context.WithTimeout(ctx, 10*time.Second)
	defer opCancel()
	checks := map[string]error{
		"Ping": b.Ping(opCtx),
		"Get": func() error {
			_, err := b.Get(opCtx, "k")
			return err
		}(),
		"Update": b.Update(opCtx, func(tx store.Txn) error {
			_, err := tx.Get("k")
			return err
		}),
		"View": b.View(opCtx, func(r store.Reader) error {
			_, err := r.IndexRange("idx", "", 0)
			return err
		}),
		"Publish":   b.Publish(opCtx, "c", "x"),
		"Subscribe": b.Subscribe(opCtx, "c2", func(string) {}, nil),
	}
	for name, err := range checks {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with server down = %v, want ErrUnavailable", name, err)
		}
	}

	t.Logf("failing operations took %v", time.Since(start))
	srv.Restart()
	start = time.Now()
	eventually(t, 10*time.Second, "Ping to recover", func() bool { return b.Ping(ctx) == nil })
	t.Logf("Ping recovered after %v", time.Since(start))
	eventually(t, 10*time.Second, "onReset after reconnect", func() bool { return resets.Load() > 0 })
	t.Logf("onReset after %v", time.Since(start))
	if err := pub.Publish(ctx, "c", "after"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "after" {
			t.Fatalf("got %q after reconnect, want \"after\"", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery after reconnect")
	}
}

func TestCanceledContextIsNotUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	b := open(t, srv, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.Get(ctx, "k")
	if !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Get with canceled ctx = %v", err)
	}
}

package session

// Scale of the session cache: what a cached validation costs with 1k and
// with 100k sessions cached (compare the two results; the ratio is what
// matters), and how much memory a cached session takes.
//
// The sessions are real: users, memberships and sessions are created with
// the public Store methods and Manager.Issue, and the cache is filled by
// Manager.Validate (the real load and put). Only the store under them is
// storetest.MemBackend, an in-memory backend, because creating 100k sessions on
// bolt is 100k fsync'd transactions. The measured path, a cached Validate,
// never reaches the store.

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/storetest"
)

// newScaleFixture returns a started Manager on an in-memory store holding n
// users, each an active member of one org with one issued session, and the
// n cookie values.
func newScaleFixture(tb testing.TB, n int, cfg Config) (*Manager, []string) {
	tb.Helper()
	ctx := context.Background()
	st := store.New(storetest.NewMemBackend())
	kr, err := NewKeyRing(ctx, st, 0)
	if err != nil {
		tb.Fatal(err)
	}
	m := NewManager(st, []byte("0123456789abcdef0123456789abcdef"), kr, cfg, nil)
	mctx, cancel := context.WithCancel(ctx)
	tb.Cleanup(cancel)
	if err := m.Start(mctx); err != nil {
		tb.Fatal(err)
	}
	p := &store.ParentOrg{Name: "Acme"}
	if err := st.CreateParentOrg(ctx, p); err != nil {
		tb.Fatal(err)
	}
	o := &store.Org{Slug: "acme", Name: "Acme", ParentID: p.ID}
	if err := st.CreateOrg(ctx, o); err != nil {
		tb.Fatal(err)
	}
	cookies := make([]string, n)
	for i := range n {
		u := &store.User{Email: fmt.Sprintf("user%d@acme.com", i), Name: fmt.Sprintf("User %d", i),
			IdPGroups: []string{"ssogate-acme-member", "engineering"}}
		if err := st.CreateUser(ctx, u); err != nil {
			tb.Fatal(err)
		}
		ms := &store.Membership{OrgID: o.ID, UserID: u.ID, Role: store.RoleMember, Status: store.MemberActive}
		if err := st.PutMembership(ctx, ms); err != nil {
			tb.Fatal(err)
		}
		c, _, err := m.Issue(ctx, u, IssueMeta{Method: "oidc", ParentID: p.ID, RemoteIP: "203.0.113.7",
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"})
		if err != nil {
			tb.Fatal(err)
		}
		cookies[i] = c
	}
	return m, cookies
}

// fillCache validates every cookie once (each a cache miss that loads and
// caches the session) and stores the entries in entries, if not nil.
func fillCache(tb testing.TB, m *Manager, cookies []string, entries []*Entry) {
	tb.Helper()
	ctx := context.Background()
	for i, c := range cookies {
		e, err := m.Validate(ctx, c)
		if err != nil {
			tb.Fatal(err)
		}
		if entries != nil {
			entries[i] = e
		}
	}
	if got := m.CacheSize(); got != int64(len(cookies)) {
		tb.Fatalf("cache holds %d sessions, want %d", got, len(cookies))
	}
}

// BenchmarkValidateCachedScale is BenchmarkValidateCached with n sessions
// in the cache, validated in a fixed random order (many users at once, not
// one hot cookie).
func BenchmarkValidateCachedScale(b *testing.B) {
	for _, sc := range []struct {
		name string
		n    int
	}{{"1k", 1_000}, {"100k", 100_000}} {
		b.Run(sc.name, func(b *testing.B) {
			m, cookies := newScaleFixture(b, sc.n, Config{Recheck: time.Hour})
			entries := make([]*Entry, sc.n)
			fillCache(b, m, cookies, entries)
			order := mrand.New(mrand.NewPCG(1, uint64(sc.n))).Perm(sc.n)
			ctx := context.Background()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				k := order[i%sc.n]
				i++
				if got, err := m.Validate(ctx, cookies[k]); err != nil || got != entries[k] {
					b.Fatal("cache miss", err)
				}
			}
		})
	}
}

// TestCachedSessionMemory measures the heap a cached session takes: the
// entry and the cache's indexes, then also the identity JWT the guard signs
// and keeps on the entry. Cookie values are allocated before the first
// measurement (they are the client's, not the cache's).
func TestCachedSessionMemory(t *testing.T) {
	const n = 20_000
	const bound = 4 << 10 // a sanity bound, bytes per session
	m, cookies := newScaleFixture(t, n, Config{Recheck: time.Hour})
	entries := make([]*Entry, n)
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	before := heap()
	fillCache(t, m, cookies, entries)
	cached := heap()
	for _, e := range entries {
		if _, err := m.JWTHeader(e, "https://app.example.com"); err != nil {
			t.Fatal(err)
		}
	}
	withJWT := heap()
	runtime.KeepAlive(cookies)
	runtime.KeepAlive(entries)
	runtime.KeepAlive(m)

	perEntry := float64(cached-before) / n
	perSession := float64(withJWT-before) / n
	t.Logf("cached session: %.0f bytes (entry and indexes), %.0f bytes with its signed JWT (%d sessions)",
		perEntry, perSession, n)
	if perEntry <= 0 || perSession < perEntry {
		t.Fatalf("implausible measurement: %.0f bytes per entry, %.0f with JWT", perEntry, perSession)
	}
	if perSession >= bound {
		t.Errorf("a cached session takes %.0f bytes, want < %d", perSession, bound)
	}
}

package session

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/bolt"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	st    *store.Store
	m     *Manager
	clk   *clock
	user  *store.User
	org   *store.Org
	ctx   context.Context
	stopM context.CancelFunc
}

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	b, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	st := store.New(b)
	st.Now = clk.Now
	ctx := context.Background()
	kr, err := NewKeyRing(ctx, st, 0)
	if err != nil {
		t.Fatal(err)
	}
	kr.now = clk.Now
	m := NewManager(st, []byte("0123456789abcdef0123456789abcdef"), kr, cfg, nil)
	m.Now = clk.Now
	mctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	if err := m.Start(mctx); err != nil {
		t.Fatal(err)
	}
	p := &store.ParentOrg{Name: "Acme"}
	if err := st.CreateParentOrg(ctx, p); err != nil {
		t.Fatal(err)
	}
	o := &store.Org{Slug: "acme", Name: "Acme", ParentID: p.ID}
	if err := st.CreateOrg(ctx, o); err != nil {
		t.Fatal(err)
	}
	u := &store.User{Email: "alice@acme.com", Name: "Alice", IdPGroups: []string{"ssogate-acme-admin"}}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := st.PutMembership(ctx, &store.Membership{OrgID: o.ID, UserID: u.ID, Role: store.RoleAdmin, Status: store.MemberActive}); err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, m: m, clk: clk, user: u, org: o, ctx: ctx, stopM: cancel}
}

// waitTouched waits until the store records activity at the current time.
func (f *fixture) waitTouched(t testing.TB, storeID string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := f.st.GetSession(f.ctx, storeID)
		if err == nil && s.LastSeen.Equal(f.clk.Now()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("last_seen not written: %+v %v", s, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (f *fixture) issue(t testing.TB) string {
	t.Helper()
	c, _, err := f.m.Issue(f.ctx, f.user, IssueMeta{Method: "test", ParentID: f.org.ParentID})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestValidateIdentity(t *testing.T) {
	f := newFixture(t, Config{})
	c := f.issue(t)
	e, err := f.m.Validate(f.ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if e.Identity.Email != "alice@acme.com" || e.Identity.RoleIn("acme") != store.RoleAdmin {
		t.Fatalf("identity = %+v", e.Identity)
	}
	if got := e.OrgsHeader[0]; got != "acme:admin" {
		t.Fatalf("orgs header = %q", got)
	}
	if got := e.GroupsHeader[0]; got != "ssogate-acme-admin" {
		t.Fatalf("groups header = %q", got)
	}
	// A second issue gives a different cookie: no fixation.
	if c2 := f.issue(t); c2 == c {
		t.Fatal("two sign-ins produced the same cookie")
	}
}

func TestTamperedCookiesRefused(t *testing.T) {
	f := newFixture(t, Config{})
	c := f.issue(t)
	id, tag, _ := strings.Cut(c, ".")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	bad := []string{"", ".", "x", id, id + ".", "." + tag, flip(id, 3) + "." + tag, id + "." + flip(tag, 2),
		id[:len(id)-1] + "." + tag, c + "x", strings.ToUpper(c), c + "." + tag, "../" + c}
	for _, v := range bad {
		if _, err := f.m.Validate(f.ctx, v); !errors.Is(err, ErrNoSession) {
			t.Errorf("Validate(%q) err = %v, want ErrNoSession", v, err)
		}
	}
	if _, err := f.m.Validate(f.ctx, c); err != nil {
		t.Fatalf("the real cookie stopped working: %v", err)
	}
}

func TestExpiredAndIdle(t *testing.T) {
	t.Run("absolute", func(t *testing.T) {
		f := newFixture(t, Config{TTL: time.Hour, Idle: 30 * time.Minute})
		c := f.issue(t)
		for i := 0; i < 5; i++ { // keep it active so only the TTL can end it
			f.clk.Add(11 * time.Minute)
			e, err := f.m.Validate(f.ctx, c)
			if err != nil {
				t.Fatalf("after %d active steps: %v", i+1, err)
			}
			// The activity is written in the background; let it land before
			// the fake clock jumps again.
			f.waitTouched(t, e.StoreID)
		}
		f.clk.Add(6 * time.Minute) // 61 minutes in
		if _, err := f.m.Validate(f.ctx, c); !errors.Is(err, ErrNoSession) {
			t.Fatalf("expired session: err = %v", err)
		}
	})
	t.Run("idle", func(t *testing.T) {
		f := newFixture(t, Config{TTL: time.Hour, Idle: 10 * time.Minute})
		c := f.issue(t)
		f.clk.Add(9 * time.Minute)
		if _, err := f.m.Validate(f.ctx, c); err != nil {
			t.Fatalf("within idle: %v", err)
		}
		f.clk.Add(10*time.Minute + time.Second)
		if _, err := f.m.Validate(f.ctx, c); !errors.Is(err, ErrNoSession) {
			t.Fatalf("idle session: err = %v", err)
		}
	})
	t.Run("idle-uncached", func(t *testing.T) {
		// Another instance (empty cache) must see the idle deadline too.
		f := newFixture(t, Config{TTL: time.Hour, Idle: 10 * time.Minute})
		c := f.issue(t)
		f.clk.Add(11 * time.Minute)
		f.m.DropCache()
		if _, err := f.m.Validate(f.ctx, c); !errors.Is(err, ErrNoSession) {
			t.Fatalf("idle session from store: err = %v", err)
		}
	})
	t.Run("touch-extends-in-store", func(t *testing.T) {
		f := newFixture(t, Config{TTL: time.Hour, Idle: 10 * time.Minute})
		c := f.issue(t)
		e, err := f.m.Validate(f.ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		f.clk.Add(8 * time.Minute)
		if _, err := f.m.Validate(f.ctx, c); err != nil {
			t.Fatal(err)
		}
		f.waitTouched(t, e.StoreID)
		f.clk.Add(8 * time.Minute) // 16 minutes since issue, 8 since activity
		f.m.DropCache()
		if _, err := f.m.Validate(f.ctx, c); err != nil {
			t.Fatalf("active session refused by a fresh cache: %v", err)
		}
	})
}

func TestRevocation(t *testing.T) {
	f := newFixture(t, Config{})
	c1, c2 := f.issue(t), f.issue(t)
	for _, c := range []string{c1, c2} {
		if _, err := f.m.Validate(f.ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// A second manager on the same store (another handler in the process)
	// must drop its cached copy too.
	other := NewManager(f.st, f.m.key, f.m.keys, Config{}, nil)
	other.Now = f.clk.Now
	octx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	if err := other.Start(octx); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Validate(f.ctx, c1); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Logout(f.ctx, c1); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*Manager{"self": f.m, "other": other} {
		if _, err := m.Validate(f.ctx, c1); !errors.Is(err, ErrNoSession) {
			t.Errorf("%s: logged-out session still valid: %v", name, err)
		}
	}
	if _, err := f.m.Validate(f.ctx, c2); err != nil {
		t.Fatalf("logout ended another session: %v", err)
	}
	n, err := f.m.RevokeParent(f.ctx, f.org.ParentID)
	if err != nil || n != 1 {
		t.Fatalf("RevokeParent = %d, %v; want 1", n, err)
	}
	if _, err := f.m.Validate(f.ctx, c2); !errors.Is(err, ErrNoSession) {
		t.Fatalf("session survived RevokeParent: %v", err)
	}
}

func TestJWTCachedPerSession(t *testing.T) {
	f := newFixture(t, Config{JWTLifetime: 5 * time.Minute})
	e, err := f.m.Validate(f.ctx, f.issue(t))
	if err != nil {
		t.Fatal(err)
	}
	const aud = "https://app.example.com"
	t1, err := f.m.JWT(e, aud)
	if err != nil {
		t.Fatal(err)
	}
	t2, _ := f.m.JWT(e, aud)
	if t1 != t2 {
		t.Fatal("JWT re-signed within its lifetime")
	}
	c, err := f.m.keys.Verify(t1, aud, f.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c.Email != "alice@acme.com" || c.Subject != f.user.ID || len(c.Orgs) != 1 || c.Orgs[0] != "acme:admin" {
		t.Fatalf("claims = %+v", c)
	}
	if _, err := f.m.keys.Verify(t1, "https://evil.example.com", f.clk.Now()); err == nil {
		t.Fatal("JWT accepted for another audience")
	}
	f.clk.Add(4*time.Minute + 30*time.Second) // inside the last fifth: re-sign
	t3, _ := f.m.JWT(e, aud)
	if t3 == t1 {
		t.Fatal("JWT not renewed near expiry")
	}
	if _, err := f.m.keys.Verify(t1, aud, f.clk.Now().Add(time.Minute)); err == nil {
		t.Fatal("expired JWT verified")
	}
}

func BenchmarkValidateCached(b *testing.B) {
	f := newFixture(b, Config{})
	c := f.issue(b)
	e, err := f.m.Validate(f.ctx, c)
	if err != nil {
		b.Fatal(err)
	}
	f.m.Now = time.Now // real clock: the cost of reading it is part of the path
	f.m.cfg.Recheck = time.Hour
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got, err := f.m.Validate(f.ctx, c); err != nil || got != e {
			b.Fatal("cache miss", err)
		}
	}
}

package session

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/redistest"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/redis"
)

// TestRevocationLatencyRedis measures how long a revocation on one gateway
// instance takes to end a session that another instance is serving from
// its cache: two Managers, each with its own Redis connection (as two
// gateways sharing one Redis), the same cookie key. Each round issues a
// session, has both instances cache it, revokes it on A (RevokeSession and
// RevokeUser in turn) and spins on B's Validate until it refuses the
// cookie. The time runs from just before the revoke call, so it covers A's
// store write, the publish, B's pub/sub delivery and B's one store read
// after its cache entry is gone.
//
// SSOGATE_REVOCATION_N sets the number of rounds (default 300).
func TestRevocationLatencyRedis(t *testing.T) {
	const maxP99 = 50 * time.Millisecond
	n := 300
	if v := os.Getenv("SSOGATE_REVOCATION_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("SSOGATE_REVOCATION_N=%q: want a positive number", v)
		}
	}
	srv := redistest.Start(t)
	ctx := context.Background()
	key := []byte("0123456789abcdef0123456789abcdef")
	instance := func() (*Manager, *store.Store) {
		b, err := redis.Open(srv.URL(), redis.Options{KeyPrefix: "revlat:"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		st := store.New(b)
		kr, err := NewKeyRing(ctx, st, 0)
		if err != nil {
			t.Fatal(err)
		}
		m := NewManager(st, key, kr, Config{}, nil)
		mctx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		if err := m.Start(mctx); err != nil {
			t.Fatal(err)
		}
		return m, st
	}
	a, st := instance()
	b, _ := instance()

	p := &store.ParentOrg{Name: "Acme"}
	if err := st.CreateParentOrg(ctx, p); err != nil {
		t.Fatal(err)
	}
	o := &store.Org{Slug: "acme", Name: "Acme", ParentID: p.ID}
	if err := st.CreateOrg(ctx, o); err != nil {
		t.Fatal(err)
	}
	u := &store.User{Email: "alice@acme.com", Name: "Alice"}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := st.PutMembership(ctx, &store.Membership{OrgID: o.ID, UserID: u.ID, Role: store.RoleMember, Status: store.MemberActive}); err != nil {
		t.Fatal(err)
	}

	lat := make([]time.Duration, 0, n)
	var calls time.Duration // time spent inside the revoke calls themselves
	for i := range n {
		c, sess, err := a.Issue(ctx, u, IssueMeta{Method: "test", ParentID: p.ID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Validate(ctx, c); err != nil {
			t.Fatal(err)
		}
		eb, err := b.Validate(ctx, c) // B loads the session and caches it
		if err != nil {
			t.Fatal(err)
		}
		// From here on B must answer from its cache, so that what ends the
		// session on B is the pushed revocation, not a store read.
		if got, err := b.Validate(ctx, c); err != nil || got != eb || b.cache.get(c) != eb || b.CacheSize() != 1 {
			t.Fatalf("round %d: B is not serving the session from its cache (entry %p, want %p; size %d; %v)",
				i, got, eb, b.CacheSize(), err)
		}

		start := time.Now()
		if i%2 == 0 {
			err = a.RevokeSession(ctx, sess.ID)
		} else {
			_, err = a.RevokeUser(ctx, u.ID)
		}
		calls += time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		for {
			got, err := b.Validate(ctx, c)
			if errors.Is(err, ErrNoSession) {
				break
			}
			if err != nil {
				t.Fatalf("round %d: B: %v", i, err)
			}
			if got != eb {
				t.Fatalf("round %d: B reloaded a revoked session", i)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("round %d: B still accepts the session %v after it was revoked on A", i, d)
			}
			runtime.Gosched()
		}
		lat = append(lat, time.Since(start))
	}

	slices.Sort(lat)
	pct := func(p float64) time.Duration { // nearest rank
		return lat[max(0, int(math.Ceil(float64(len(lat))*p))-1)]
	}
	p50, p99, worst := pct(0.50), pct(0.99), lat[len(lat)-1]
	t.Logf("revocation on A seen by B's cache (redis, %d rounds): p50 %v, p99 %v, max %v; the revoke call itself averaged %v",
		n, p50, p99, worst, calls/time.Duration(n))
	if p99 > maxP99 {
		t.Errorf("revocation p99 = %v, want <= %v", p99, maxP99)
	}
}

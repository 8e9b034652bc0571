package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

// runAuthStateTests covers the short-lived sign-in state (pending auth,
// assertion replay cache, one-time tokens), bearer secrets, audit events
// and rate-limit counters.
func runAuthStateTests(t *testing.T, name string, newBackend Factory) {
	t.Run("PendingAuth", func(t *testing.T) { testPendingAuth(t, newBackend) })
	t.Run("PendingAuthClockExpiry", func(t *testing.T) { testPendingAuthClockExpiry(t, newBackend) })
	t.Run("PendingAuthBackendExpiry", func(t *testing.T) { testPendingAuthBackendExpiry(t, name, newBackend) })
	t.Run("PendingAuthTakeRace", func(t *testing.T) { testPendingAuthTakeRace(t, newBackend) })
	t.Run("ReplayCache", func(t *testing.T) { testReplayCache(t, newBackend) })
	t.Run("ReplayCacheRace", func(t *testing.T) { testReplayCacheRace(t, newBackend) })
	t.Run("ReplayCacheFailsClosed", func(t *testing.T) { testReplayCacheFailsClosed(t, newBackend) })
	t.Run("OneTimeToken", func(t *testing.T) { testOneTimeToken(t, newBackend) })
	t.Run("OneTimeTokenRace", func(t *testing.T) { testOneTimeTokenRace(t, newBackend) })
	t.Run("Secrets", func(t *testing.T) { testSecrets(t, newBackend) })
	t.Run("AuditList", func(t *testing.T) { testAuditList(t, newBackend) })
	t.Run("AuditFilters", func(t *testing.T) { testAuditFilters(t, newBackend) })
	t.Run("RateLimit", func(t *testing.T) { testRateLimit(t, newBackend) })
	t.Run("RateLimitConcurrent", func(t *testing.T) { testRateLimitConcurrent(t, newBackend) })
}

// asClock is an injectable clock, safe for concurrent use.
// asClock is the suite's injectable clock.
type asClock = clock

// asStore returns a store on a fresh backend whose clock starts at a
// minute boundary (plus 10s) and moves only when the test says so.
func asStore(t *testing.T, newBackend Factory) (*store.Store, *asClock) {
	t.Helper()
	clock := &asClock{now: time.Now().UTC().Truncate(time.Minute).Add(10 * time.Second)}
	s := store.New(newBackend(t))
	s.Now = clock.Now
	return s, clock
}

// asRace runs fn from n goroutines released at once and returns their errors.
func asRace(n int, fn func() error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn()
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// asCheckOneWinner fails unless exactly one error is nil and every other
// is want (or ErrConflict: an optimistic backend may give up under heavy
// contention, which refuses the request just the same).
func asCheckOneWinner(t *testing.T, errs []error, want error) {
	t.Helper()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, want), errors.Is(err, store.ErrConflict):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d goroutines succeeded, want exactly 1", wins, len(errs))
	}
}

func testPendingAuth(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, clock := asStore(t, newBackend)
	now := clock.Now()
	p := &store.PendingAuth{
		ID: "state-1", ConnectionID: "conn-1", Nonce: "n", PKCEVerifier: "v",
		ReturnTo: "/app", Email: "a@example.com", BrowserKey: "bk",
		ExpiresAt: now.Add(10 * time.Minute),
	}
	if err := s.PutPendingAuth(ctx, p); err != nil {
		t.Fatalf("PutPendingAuth: %v", err)
	}
	if !p.CreatedAt.Equal(now) {
		t.Errorf("CreatedAt = %v, want the store's now %v", p.CreatedAt, now)
	}
	dup := *p
	if err := s.PutPendingAuth(ctx, &dup); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("second PutPendingAuth: %v, want ErrAlreadyExists", err)
	}
	expired := &store.PendingAuth{ID: "state-old", ExpiresAt: now.Add(-time.Second)}
	if err := s.PutPendingAuth(ctx, expired); err == nil {
		t.Errorf("PutPendingAuth of an expired request succeeded")
	}
	if err := s.PutPendingAuth(ctx, &store.PendingAuth{ExpiresAt: now.Add(time.Minute)}); err == nil {
		t.Errorf("PutPendingAuth without ID succeeded")
	}

	for range 2 { // peeking does not consume
		got, err := s.PeekPendingAuth(ctx, "state-1")
		if err != nil {
			t.Fatalf("PeekPendingAuth: %v", err)
		}
		asSamePending(t, got, p)
	}
	got, err := s.TakePendingAuth(ctx, "state-1")
	if err != nil {
		t.Fatalf("TakePendingAuth: %v", err)
	}
	asSamePending(t, got, p)
	if _, err := s.TakePendingAuth(ctx, "state-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second TakePendingAuth: %v, want ErrNotFound", err)
	}
	if _, err := s.PeekPendingAuth(ctx, "state-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PeekPendingAuth after Take: %v, want ErrNotFound", err)
	}
	for _, id := range []string{"unknown", ""} {
		if _, err := s.TakePendingAuth(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("TakePendingAuth(%q): %v, want ErrNotFound", id, err)
		}
		if _, err := s.PeekPendingAuth(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("PeekPendingAuth(%q): %v, want ErrNotFound", id, err)
		}
	}
}

func asSamePending(t *testing.T, got, want *store.PendingAuth) {
	t.Helper()
	if got.ID != want.ID || got.ConnectionID != want.ConnectionID || got.Nonce != want.Nonce ||
		got.PKCEVerifier != want.PKCEVerifier || got.ReturnTo != want.ReturnTo ||
		got.Email != want.Email || got.BrowserKey != want.BrowserKey ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("pending auth = %+v, want %+v", got, want)
	}
}

// The store's clock decides expiry, whatever the backend still holds.
func testPendingAuthClockExpiry(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, clock := asStore(t, newBackend)
	for _, id := range []string{"peeked", "taken"} {
		p := &store.PendingAuth{ID: id, ReturnTo: "/", ExpiresAt: clock.Now().Add(time.Minute)}
		if err := s.PutPendingAuth(ctx, p); err != nil {
			t.Fatalf("PutPendingAuth: %v", err)
		}
	}
	clock.Advance(time.Minute)
	if _, err := s.PeekPendingAuth(ctx, "peeked"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PeekPendingAuth after expiry: %v, want ErrNotFound", err)
	}
	if _, err := s.TakePendingAuth(ctx, "taken"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakePendingAuth after expiry: %v, want ErrNotFound", err)
	}
}

// The backend drops the record itself once its TTL has passed in real
// time (the store's clock is frozen, so only the backend can expire it).
func testPendingAuthBackendExpiry(t *testing.T, name string, newBackend Factory) {
	ctx := t.Context()
	b := newBackend(t)
	s := store.New(b)
	frozen := time.Now()
	s.Now = func() time.Time { return frozen }
	p := &store.PendingAuth{ID: "short", ReturnTo: "/", ExpiresAt: frozen.Add(time.Second)}
	if err := s.PutPendingAuth(ctx, p); err != nil {
		t.Fatalf("PutPendingAuth: %v", err)
	}
	if _, err := s.PeekPendingAuth(ctx, "short"); err != nil {
		t.Fatalf("PeekPendingAuth before the TTL: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := b.GarbageCollect(ctx, time.Now()); err != nil {
			t.Fatalf("GarbageCollect: %v", err)
		}
		_, err := s.PeekPendingAuth(ctx, "short")
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatalf("PeekPendingAuth: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still holds the pending auth 10s after its 1s TTL", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := s.TakePendingAuth(ctx, "short"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakePendingAuth after backend expiry: %v, want ErrNotFound", err)
	}
}

func testPendingAuthTakeRace(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, clock := asStore(t, newBackend)
	p := &store.PendingAuth{ID: "raced", ReturnTo: "/", ExpiresAt: clock.Now().Add(time.Minute)}
	if err := s.PutPendingAuth(ctx, p); err != nil {
		t.Fatalf("PutPendingAuth: %v", err)
	}
	errs := asRace(20, func() error {
		got, err := s.TakePendingAuth(ctx, "raced")
		if err == nil && got.ID != "raced" {
			return fmt.Errorf("took %q", got.ID)
		}
		return err
	})
	asCheckOneWinner(t, errs, store.ErrNotFound)
}

func testReplayCache(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, clock := asStore(t, newBackend)
	until := clock.Now().Add(5 * time.Minute)
	if err := s.RememberAssertion(ctx, "conn-a", "_id1", until); err != nil {
		t.Fatalf("RememberAssertion: %v", err)
	}
	if err := s.RememberAssertion(ctx, "conn-a", "_id1", until); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("replayed assertion: %v, want ErrAlreadyExists", err)
	}
	// IDs are unique per issuer only.
	if err := s.RememberAssertion(ctx, "conn-b", "_id1", until); err != nil {
		t.Errorf("same ID from another connection: %v", err)
	}
	if err := s.RememberAssertion(ctx, "conn-a", "_id2", until); err != nil {
		t.Errorf("another ID: %v", err)
	}
	// A separator in the IDs cannot make two records collide.
	if err := s.RememberAssertion(ctx, "conn-a/x", "_id1", until); err != nil {
		t.Errorf("connection ID with a slash: %v", err)
	}
	// A deadline already past still gets a record, for at least a minute.
	if err := s.RememberAssertion(ctx, "conn-a", "_late", clock.Now().Add(-time.Hour)); err != nil {
		t.Fatalf("RememberAssertion with a past deadline: %v", err)
	}
	if err := s.RememberAssertion(ctx, "conn-a", "_late", clock.Now()); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("replayed late assertion: %v, want ErrAlreadyExists", err)
	}
	if err := s.RememberAssertion(ctx, "", "_id1", until); err == nil {
		t.Errorf("RememberAssertion without connection succeeded")
	}
	if err := s.RememberAssertion(ctx, "conn-a", "", until); err == nil {
		t.Errorf("RememberAssertion without assertion ID succeeded")
	}
	// Long after the deadline (and margin) the record no longer counts.
	clock.Advance(time.Hour)
	if err := s.RememberAssertion(ctx, "conn-a", "_id1", clock.Now().Add(time.Minute)); err != nil {
		t.Errorf("RememberAssertion after the old record expired: %v", err)
	}
}

func testReplayCacheRace(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, clock := asStore(t, newBackend)
	until := clock.Now().Add(5 * time.Minute)
	errs := asRace(20, func() error { return s.RememberAssertion(ctx, "conn-r", "_raced", until) })
	asCheckOneWinner(t, errs, store.ErrAlreadyExists)
}

// asFailingBackend makes every read inside a transaction fail, as an
// unreachable store would.
type asFailingBackend struct{ store.Backend }

type asFailingTxn struct{ store.Txn }

var errASInjected = fmt.Errorf("%w: injected failure", store.ErrUnavailable)

func (asFailingTxn) Get(string) ([]byte, error) { return nil, errASInjected }

func (b asFailingBackend) Update(ctx context.Context, fn func(tx store.Txn) error) error {
	return b.Backend.Update(ctx, func(tx store.Txn) error { return fn(asFailingTxn{tx}) })
}

func testReplayCacheFailsClosed(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s := store.New(asFailingBackend{newBackend(t)})
	err := s.RememberAssertion(ctx, "conn-f", "_id", time.Now().Add(time.Minute))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("RememberAssertion on a failing backend: %v, want ErrUnavailable", err)
	}
}

func testOneTimeToken(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, clock := asStore(t, newBackend)
	secret := store.NewSecret("")
	tok := &store.OneTimeToken{
		Hash: store.HashSecret(secret), Purpose: "login", Email: "a@example.com",
		BrowserKey: "bk", ReturnTo: "/app", Data: map[string]string{"org": "acme"},
		ExpiresAt: clock.Now().Add(15 * time.Minute),
	}
	if err := s.PutOneTimeToken(ctx, tok); err != nil {
		t.Fatalf("PutOneTimeToken: %v", err)
	}
	if !tok.CreatedAt.Equal(clock.Now()) {
		t.Errorf("CreatedAt = %v, want %v", tok.CreatedAt, clock.Now())
	}
	dup := *tok
	if err := s.PutOneTimeToken(ctx, &dup); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("second PutOneTimeToken: %v, want ErrAlreadyExists", err)
	}
	if err := s.PutOneTimeToken(ctx, &store.OneTimeToken{ExpiresAt: clock.Now().Add(time.Minute)}); err == nil {
		t.Errorf("PutOneTimeToken without hash succeeded")
	}
	if err := s.PutOneTimeToken(ctx, &store.OneTimeToken{Hash: store.HashSecret("x"), ExpiresAt: clock.Now()}); err == nil {
		t.Errorf("PutOneTimeToken of an expired token succeeded")
	}
	// Peek reads without using it up.
	for range 2 {
		if p, err := s.PeekOneTimeToken(ctx, tok.Hash); err != nil || p.Email != tok.Email || p.BrowserKey != "bk" {
			t.Fatalf("PeekOneTimeToken = %+v, %v", p, err)
		}
	}
	if _, err := s.PeekOneTimeToken(ctx, store.HashSecret("other")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PeekOneTimeToken of an unknown token: %v", err)
	}
	got, err := s.TakeOneTimeToken(ctx, store.HashSecret(secret))
	if err != nil {
		t.Fatalf("TakeOneTimeToken: %v", err)
	}
	if _, err := s.PeekOneTimeToken(ctx, tok.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PeekOneTimeToken after Take: %v", err)
	}
	if got.Hash != tok.Hash || got.Purpose != "login" || got.Email != tok.Email ||
		got.BrowserKey != "bk" || got.ReturnTo != "/app" || got.Data["org"] != "acme" ||
		!got.ExpiresAt.Equal(tok.ExpiresAt) || !got.CreatedAt.Equal(tok.CreatedAt) {
		t.Errorf("token = %+v, want %+v", got, tok)
	}
	if _, err := s.TakeOneTimeToken(ctx, tok.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second TakeOneTimeToken: %v, want ErrNotFound", err)
	}
	if _, err := s.TakeOneTimeToken(ctx, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakeOneTimeToken(\"\"): %v, want ErrNotFound", err)
	}

	late := &store.OneTimeToken{Hash: store.HashSecret("late"), Purpose: "login", ExpiresAt: clock.Now().Add(time.Minute)}
	if err := s.PutOneTimeToken(ctx, late); err != nil {
		t.Fatalf("PutOneTimeToken: %v", err)
	}
	clock.Advance(2 * time.Minute)
	if _, err := s.TakeOneTimeToken(ctx, late.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakeOneTimeToken after expiry: %v, want ErrNotFound", err)
	}
}

func testOneTimeTokenRace(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, clock := asStore(t, newBackend)
	hash := store.HashSecret(store.NewSecret(""))
	tok := &store.OneTimeToken{Hash: hash, Purpose: "login", ExpiresAt: clock.Now().Add(time.Minute)}
	if err := s.PutOneTimeToken(ctx, tok); err != nil {
		t.Fatalf("PutOneTimeToken: %v", err)
	}
	errs := asRace(20, func() error {
		_, err := s.TakeOneTimeToken(ctx, hash)
		return err
	})
	asCheckOneWinner(t, errs, store.ErrNotFound)
}

func testSecrets(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, clock := asStore(t, newBackend)

	secret := store.NewSecret("sgs_")
	if !strings.HasPrefix(secret, "sgs_") || len(secret) < len("sgs_")+43 {
		t.Fatalf("NewSecret = %q: want the prefix and at least 256 bits", secret)
	}
	if other := store.NewSecret("sgs_"); other == secret {
		t.Fatalf("NewSecret repeated itself")
	}
	hash := store.HashSecret(secret)
	if len(hash) != 64 || hash != store.HashSecret(secret) || hash == store.HashSecret(secret+"x") {
		t.Fatalf("HashSecret = %q: want a stable hex SHA-256", hash)
	}

	scim := &store.SecretRecord{Kind: store.SecretSCIM, Hash: hash, Name: "okta", OrgID: "org-1"}
	if err := s.CreateSecret(ctx, scim); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	if scim.ID == "" || !scim.CreatedAt.Equal(clock.Now()) {
		t.Errorf("CreateSecret assigned ID %q, CreatedAt %v", scim.ID, scim.CreatedAt)
	}
	dup := &store.SecretRecord{Kind: store.SecretSCIM, Hash: hash, Name: "again", OrgID: "org-2"}
	if err := s.CreateSecret(ctx, dup); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("CreateSecret with a taken hash: %v, want ErrAlreadyExists", err)
	}
	for _, bad := range []*store.SecretRecord{
		{Kind: "other", Hash: store.HashSecret("a"), OrgID: "org-1"},
		{Kind: store.SecretSCIM, Hash: store.HashSecret("b")},                 // no org
		{Kind: store.SecretAPI, Hash: store.HashSecret("c"), OrgID: "org-1"},  // API keys need a parent
		{Kind: store.SecretSCIM, Hash: "not-a-hash", OrgID: "org-1"},          // the secret itself?
		{Kind: store.SecretSCIM, Hash: store.NewSecret("") + "", OrgID: "o1"}, // not 64 hex
	} {
		if err := s.CreateSecret(ctx, bad); err == nil {
			t.Errorf("CreateSecret(%+v) succeeded", bad)
		}
	}
	scim2Secret := store.NewSecret("sgs_")
	scim2 := &store.SecretRecord{Kind: store.SecretSCIM, Hash: store.HashSecret(scim2Secret), Name: "second", OrgID: "org-1"}
	otherOrg := &store.SecretRecord{Kind: store.SecretSCIM, Hash: store.HashSecret(store.NewSecret("sgs_")), Name: "o2", OrgID: "org-2"}
	apiSecret := store.NewSecret("sgk_")
	api := &store.SecretRecord{Kind: store.SecretAPI, Hash: store.HashSecret(apiSecret), Name: "ci", ParentID: "parent-1"}
	for _, rec := range []*store.SecretRecord{scim2, otherOrg, api} {
		if err := s.CreateSecret(ctx, rec); err != nil {
			t.Fatalf("CreateSecret(%s): %v", rec.Name, err)
		}
	}

	got, err := s.LookupSecret(ctx, store.SecretSCIM, secret)
	if err != nil {
		t.Fatalf("LookupSecret: %v", err)
	}
	if got.ID != scim.ID || got.OrgID != "org-1" || got.Name != "okta" || got.Kind != store.SecretSCIM || got.Hash != hash {
		t.Errorf("LookupSecret = %+v, want %+v", got, scim)
	}
	asNoHashInJSON(t, got)
	if got, err := s.LookupSecret(ctx, store.SecretAPI, apiSecret); err != nil || got.ParentID != "parent-1" {
		t.Errorf("LookupSecret(api) = %+v, %v", got, err)
	}
	for _, c := range []struct{ kind, secret string }{
		{store.SecretAPI, secret},        // right secret, wrong kind
		{store.SecretSCIM, apiSecret},    // likewise
		{store.SecretSCIM, secret + "x"}, // wrong secret
		{store.SecretSCIM, hash},         // the hash is not the secret
		{store.SecretSCIM, ""},
	} {
		if _, err := s.LookupSecret(ctx, c.kind, c.secret); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("LookupSecret(%s, %q): %v, want ErrNotFound", c.kind, c.secret, err)
		}
	}

	list, err := s.ListSecrets(ctx, store.SecretSCIM, "org-1")
	if err != nil {
		t.Fatalf("ListSecrets: %v", err)
	}
	if ids := asSecretIDs(list); len(list) != 2 || !ids[scim.ID] || !ids[scim2.ID] {
		t.Errorf("ListSecrets(org-1) = %+v, want okta and second", list)
	}
	for i := range list {
		asNoHashInJSON(t, &list[i])
	}
	if list, err := s.ListSecrets(ctx, store.SecretAPI, "parent-1"); err != nil || len(list) != 1 || list[0].ID != api.ID {
		t.Errorf("ListSecrets(api, parent-1) = %+v, %v", list, err)
	}
	if list, err := s.ListSecrets(ctx, store.SecretAPI, "org-1"); err != nil || len(list) != 0 {
		t.Errorf("ListSecrets(api, org-1) = %+v, %v; want none", list, err)
	}

	// Use is recorded, and never moves backwards.
	used := clock.Now().Add(time.Minute)
	if err := s.TouchSecret(ctx, hash, used); err != nil {
		t.Fatalf("TouchSecret: %v", err)
	}
	if err := s.TouchSecret(ctx, hash, used.Add(-time.Hour)); err != nil {
		t.Fatalf("TouchSecret: %v", err)
	}
	if got, err := s.LookupSecret(ctx, store.SecretSCIM, secret); err != nil || !got.LastUsedAt.Equal(used) {
		t.Errorf("after TouchSecret: %+v, %v; want LastUsedAt %v", got, err, used)
	}
	if err := s.TouchSecret(ctx, store.HashSecret("nope"), used); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TouchSecret(unknown): %v, want ErrNotFound", err)
	}

	// Only the owner can revoke, and only with the right kind.
	for _, c := range []struct{ kind, owner string }{
		{store.SecretSCIM, "org-2"}, {store.SecretAPI, "org-1"}, {store.SecretAPI, "parent-1"},
	} {
		if err := s.RevokeSecret(ctx, c.kind, c.owner, scim.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RevokeSecret(%s, %s): %v, want ErrNotFound", c.kind, c.owner, err)
		}
	}
	if _, err := s.LookupSecret(ctx, store.SecretSCIM, secret); err != nil {
		t.Fatalf("secret gone after refused revocations: %v", err)
	}
	if err := s.RevokeSecret(ctx, store.SecretSCIM, "org-1", scim.ID); err != nil {
		t.Fatalf("RevokeSecret: %v", err)
	}
	if _, err := s.LookupSecret(ctx, store.SecretSCIM, secret); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LookupSecret after revoke: %v, want ErrNotFound", err)
	}
	if err := s.RevokeSecret(ctx, store.SecretSCIM, "org-1", scim.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second RevokeSecret: %v, want ErrNotFound", err)
	}
	if list, err := s.ListSecrets(ctx, store.SecretSCIM, "org-1"); err != nil || len(list) != 1 || list[0].ID != scim2.ID {
		t.Errorf("ListSecrets after revoke = %+v, %v; want only second", list, err)
	}
	// The revoked hash can be used again (a new record, not the old one).
	again := &store.SecretRecord{Kind: store.SecretSCIM, Hash: hash, Name: "re", OrgID: "org-3"}
	if err := s.CreateSecret(ctx, again); err != nil {
		t.Errorf("CreateSecret with a revoked hash: %v", err)
	}

	n, err := s.RevokeAllSecrets(ctx, store.SecretSCIM, "org-1")
	if err != nil || n != 1 {
		t.Errorf("RevokeAllSecrets = %d, %v; want 1", n, err)
	}
	if _, err := s.LookupSecret(ctx, store.SecretSCIM, scim2Secret); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LookupSecret after RevokeAllSecrets: %v, want ErrNotFound", err)
	}
	if _, err := s.LookupSecret(ctx, store.SecretAPI, apiSecret); err != nil {
		t.Errorf("RevokeAllSecrets touched another owner's key: %v", err)
	}
}

func asSecretIDs(list []store.SecretRecord) map[string]bool {
	ids := map[string]bool{}
	for _, r := range list {
		ids[r.ID] = true
	}
	return ids
}

func asNoHashInJSON(t *testing.T, rec *store.SecretRecord) {
	t.Helper()
	raw, err := json.Marshal(rec)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if rec.Hash == "" || strings.Contains(string(raw), rec.Hash) || strings.Contains(string(raw), `"hash"`) {
		t.Errorf("secret record JSON %s exposes its hash (or the record has none)", raw)
	}
}

// asAppendEvents appends n events, a second apart but in shuffled order,
// and returns them oldest first.
func asAppendEvents(t *testing.T, s *store.Store, base time.Time, n int, newEvent func(i int) store.AuditEvent) []store.AuditEvent {
	t.Helper()
	events := make([]store.AuditEvent, n)
	for k := range n {
		i := (k * 7) % n // a permutation when gcd(7, n) == 1
		e := newEvent(i)
		e.Time = base.Add(time.Duration(i) * time.Second)
		if err := s.AppendAudit(t.Context(), &e); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		if e.ID == "" {
			t.Fatalf("AppendAudit assigned no ID")
		}
		events[i] = e
	}
	return events
}

// asPage lists every page of q and returns the events in order.
func asPage(t *testing.T, s *store.Store, q store.AuditQuery) []store.AuditEvent {
	t.Helper()
	var all []store.AuditEvent
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("ListAudit(%+v) does not stop paging", q)
		}
		page, next, err := s.ListAudit(t.Context(), q)
		if err != nil {
			t.Fatalf("ListAudit(%+v): %v", q, err)
		}
		limit := q.Limit
		if limit <= 0 {
			limit = 50
		}
		if len(page) > limit {
			t.Fatalf("ListAudit(%+v) returned %d events, over the limit", q, len(page))
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		q.After = next
	}
}

func asCheckEvents(t *testing.T, what string, got, want []store.AuditEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || !got[i].Time.Equal(want[i].Time) || got[i].Action != want[i].Action {
			t.Fatalf("%s: event %d = %s %s %v, want %s %s %v", what, i,
				got[i].ID, got[i].Action, got[i].Time, want[i].ID, want[i].Action, want[i].Time)
		}
	}
}

func asReversed(events []store.AuditEvent) []store.AuditEvent {
	out := make([]store.AuditEvent, len(events))
	for i, e := range events {
		out[len(events)-1-i] = e
	}
	return out
}

func testAuditList(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, clock := asStore(t, newBackend)

	// Time and ID are assigned when empty; fields survive the round trip.
	first := store.AuditEvent{
		ParentID: "p0", OrgID: "o0", Actor: "alice@example.com", Action: "domain.add",
		Target: "example.com", Outcome: "success", Details: map[string]string{"k": "v"}, RemoteIP: "192.0.2.1",
	}
	if err := s.AppendAudit(ctx, &first); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if first.ID == "" || !first.Time.Equal(clock.Now()) {
		t.Fatalf("AppendAudit assigned ID %q, Time %v", first.ID, first.Time)
	}
	page, next, err := s.ListAudit(ctx, store.AuditQuery{ParentID: "p0"})
	if err != nil || next != "" || len(page) != 1 {
		t.Fatalf("ListAudit(p0) = %+v, %q, %v", page, next, err)
	}
	if got := page[0]; got.ID != first.ID || got.OrgID != "o0" || got.Actor != first.Actor ||
		got.Target != "example.com" || got.Outcome != "success" || got.Details["k"] != "v" || got.RemoteIP != "192.0.2.1" {
		t.Errorf("ListAudit(p0)[0] = %+v, want %+v", got, first)
	}
	if page, next, err := s.ListAudit(ctx, store.AuditQuery{ParentID: "nobody"}); err != nil || len(page) != 0 || next != "" {
		t.Errorf("ListAudit(unknown parent) = %+v, %q, %v; want nothing", page, next, err)
	}
	if _, _, err := s.ListAudit(ctx, store.AuditQuery{After: "not a cursor"}); err == nil {
		t.Errorf("ListAudit with a bad cursor succeeded")
	}

	// 61 events (one more than a default page), appended out of order.
	base := clock.Now().Add(time.Hour)
	events := asAppendEvents(t, s, base, 61, func(i int) store.AuditEvent {
		return store.AuditEvent{ParentID: "p1", Actor: "system", Action: fmt.Sprintf("act.%02d", i), Outcome: "success"}
	})
	for _, limit := range []int{0, 1, 7, 61, 1000} {
		asc := asPage(t, s, store.AuditQuery{ParentID: "p1", Limit: limit})
		asCheckEvents(t, fmt.Sprintf("oldest first, limit %d", limit), asc, events)
		desc := asPage(t, s, store.AuditQuery{ParentID: "p1", Limit: limit, NewestFirst: true})
		asCheckEvents(t, fmt.Sprintf("newest first, limit %d", limit), desc, asReversed(events))
	}
	page, next, err = s.ListAudit(ctx, store.AuditQuery{ParentID: "p1"})
	if err != nil || len(page) != 50 || next != page[49].ID {
		t.Errorf("default page: %d events, next %q, %v; want 50 and the last ID", len(page), next, err)
	}
	// The global list holds every parent's events.
	all := asPage(t, s, store.AuditQuery{Limit: 10, NewestFirst: true})
	asCheckEvents(t, "global newest first", all, append(asReversed(events), first))
}

func testAuditFilters(t *testing.T, newBackend Factory) {
	s, clock := asStore(t, newBackend)
	base := clock.Now()
	events := asAppendEvents(t, s, base, 40, func(i int) store.AuditEvent {
		e := store.AuditEvent{ParentID: "p1", Actor: "alice@example.com", Action: "member.invite", Outcome: "success"}
		if i%2 == 1 {
			e.ParentID = "p2"
		}
		if i%4 == 0 {
			e.Actor, e.Action = "scim:okta", "scim.user.create"
		}
		if i == 37 {
			e.Action = "scim.group.update"
		}
		return e
	})
	filter := func(keep func(e store.AuditEvent) bool) []store.AuditEvent {
		var out []store.AuditEvent
		for _, e := range events {
			if keep(e) {
				out = append(out, e)
			}
		}
		return out
	}
	cases := []struct {
		name string
		q    store.AuditQuery
		keep func(e store.AuditEvent) bool
	}{
		{"parent", store.AuditQuery{ParentID: "p2"}, func(e store.AuditEvent) bool { return e.ParentID == "p2" }},
		{"action prefix", store.AuditQuery{Action: "scim."}, func(e store.AuditEvent) bool { return strings.HasPrefix(e.Action, "scim.") }},
		{"exact action", store.AuditQuery{Action: "scim.group.update"}, func(e store.AuditEvent) bool { return e.Action == "scim.group.update" }},
		{"actor", store.AuditQuery{Actor: "alice@"}, func(e store.AuditEvent) bool { return strings.HasPrefix(e.Actor, "alice@") }},
		{"parent and actor", store.AuditQuery{ParentID: "p1", Actor: "scim:"}, func(e store.AuditEvent) bool {
			return e.ParentID == "p1" && strings.HasPrefix(e.Actor, "scim:")
		}},
		{"no match", store.AuditQuery{Action: "nothing"}, func(store.AuditEvent) bool { return false }},
	}
	for _, c := range cases {
		want := filter(c.keep)
		for _, limit := range []int{1, 3, 100} {
			q := c.q
			q.Limit = limit
			asCheckEvents(t, fmt.Sprintf("%s, limit %d", c.name, limit), asPage(t, s, q), want)
			q.NewestFirst = true
			asCheckEvents(t, fmt.Sprintf("%s, limit %d, newest first", c.name, limit), asPage(t, s, q), asReversed(want))
		}
	}
}

func testRateLimit(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, clock := asStore(t, newBackend) // 10s into a minute
	for i := 1; i <= 3; i++ {
		count, retry, ok, err := s.Hit(ctx, "login:a@example.com", time.Minute, 3)
		if err != nil || count != i || !ok {
			t.Fatalf("hit %d: count %d, allowed %v, %v", i, count, ok, err)
		}
		if retry != 50*time.Second {
			t.Errorf("hit %d: retryAfter %v, want 50s (the rest of the window)", i, retry)
		}
	}
	for range 2 {
		count, retry, ok, err := s.Hit(ctx, "login:a@example.com", time.Minute, 3)
		if err != nil || ok || count <= 3 || retry <= 0 || retry > time.Minute {
			t.Fatalf("hit past the limit: count %d, retryAfter %v, allowed %v, %v", count, retry, ok, err)
		}
	}
	// Peek reads the window without counting.
	for range 2 {
		if n, retry, err := s.Peek(ctx, "login:a@example.com", time.Minute); err != nil || n != 3 || retry != 50*time.Second {
			t.Fatalf("Peek: %d, %v, %v; want 3 (refused hits are not written), 50s", n, retry, err)
		}
	}
	if n, _, err := s.Peek(ctx, "never-hit", time.Minute); err != nil || n != 0 {
		t.Fatalf("Peek of an unknown key: %d, %v", n, err)
	}
	// Other keys and other window lengths count apart.
	if count, _, ok, err := s.Hit(ctx, "login:b@example.com", time.Minute, 3); err != nil || count != 1 || !ok {
		t.Errorf("other key: count %d, allowed %v, %v", count, ok, err)
	}
	if count, _, ok, err := s.Hit(ctx, "login:a@example.com", time.Hour, 3); err != nil || count != 1 || !ok {
		t.Errorf("other window: count %d, allowed %v, %v", count, ok, err)
	}
	// A new window starts from zero.
	clock.Advance(50 * time.Second)
	if count, retry, ok, err := s.Hit(ctx, "login:a@example.com", time.Minute, 3); err != nil || count != 1 || !ok || retry != time.Minute {
		t.Errorf("new window: count %d, retryAfter %v, allowed %v, %v", count, retry, ok, err)
	}
	// A limit of zero refuses everything.
	if _, _, ok, err := s.Hit(ctx, "closed", time.Minute, 0); err != nil || ok {
		t.Errorf("limit 0: allowed %v, %v", ok, err)
	}
	if _, _, _, err := s.Hit(ctx, "bad", 0, 3); err == nil {
		t.Errorf("Hit with a zero window succeeded")
	}
}

func testRateLimitConcurrent(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, _ := asStore(t, newBackend)
	var mu sync.Mutex
	seen := map[int]bool{}
	errs := asRace(20, func() error {
		count, _, ok, err := s.Hit(ctx, "burst", time.Minute, 100)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if !ok || seen[count] {
			return fmt.Errorf("count %d (allowed %v) seen twice or refused", count, ok)
		}
		seen[count] = true
		return nil
	})
	counted := 0
	for _, err := range errs {
		switch {
		case err == nil:
			counted++
		case errors.Is(err, store.ErrConflict):
		default:
			t.Errorf("Hit: %v", err)
		}
	}
	// No hit was lost: the next count follows every hit that succeeded.
	if count, _, _, err := s.Hit(ctx, "burst", time.Minute, 100); err != nil || count != counted+1 {
		t.Errorf("after %d concurrent hits the count is %d (%v)", counted, count, err)
	}
}

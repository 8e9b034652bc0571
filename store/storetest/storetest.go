// Package storetest is the conformance suite every store.Backend runs (in
// the manner of dex's storage/conformance): the backend's own semantics,
// and every Store method on top of it, so the bolt and Redis backends are
// proven to behave the same.
package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

// Factory returns a fresh, empty backend for one test; it registers its own
// cleanup (closing the backend) with t.
type Factory func(t *testing.T) store.Backend

// RunTests runs the whole suite against the backends newBackend makes.
// Every subtest is named name/..., so `go test -v` says which backend ran.
func RunTests(t *testing.T, name string, newBackend Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newBackend Factory)
	}{
		{"Backend/KeyValue", testBackendKV},
		{"Backend/TTL", testBackendTTL},
		{"Backend/ReadYourWrites", testBackendReadYourWrites},
		{"Backend/Rollback", testBackendRollback},
		{"Backend/IndexRange", testBackendIndexRange},
		{"Backend/Serializable", testBackendSerializable},
		{"Backend/ConsistentError", testBackendConsistentError},
		{"Backend/PubSub", testBackendPubSub},
		{"Backend/Health", testBackendHealth},
		{"Sessions", testSessions},
		{"SessionIdleExpiry", testSessionIdleExpiry},
		{"ParentOrgs", testParentOrgs},
		{"Orgs", testOrgs},
		{"Connections", testConnections},
		{"Users", testUsers},
		{"UserEmailRace", testUserEmailRace},
		{"Identities", testIdentities},
		{"Memberships", testMemberships},
		{"MembershipSCIMKeys", testMembershipSCIMKeys},
		{"DeleteUser", testDeleteUser},
		{"Groups", testGroups},
		{"GroupMembers", testGroupMembers},
		{"Domains", testDomains},
		{"DomainStatusUpdates", testDomainStatusUpdates},
		{"DomainVerifyRace", testDomainVerifyRace},
		{"MergeProposals", testMergeProposals},
		{"MergeApply", testMergeApply},
		{"MergeConflict", testMergeConflict},
		{"MergeApplyRace", testMergeApplyRace},
		{"MergeInjectedFailure", testMergeInjectedFailure},
	}
	t.Run(name, func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, newBackend) })
		}
		runAuthStateTests(t, name, newBackend)
	})
}

// clock is an injectable clock, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newStore returns a Store on a fresh backend with a clock that moves only
// when the test says so.
func newStore(t *testing.T, newBackend Factory) (*store.Store, *clock) {
	t.Helper()
	c := &clock{now: time.Now().UTC().Truncate(time.Second)}
	s := store.New(newBackend(t))
	s.Now = c.Now
	return s, c
}

// race runs fn(i) from n goroutines released together and returns the errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one error is nil and every other one is
// want, or ErrConflict (an optimistic backend that gave up under contention
// refuses the request just the same). It returns the winner's index.
func oneWinner(t *testing.T, errs []error, want error) int {
	t.Helper()
	winner, conflicts := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("goroutines %d and %d both succeeded", winner, i)
			}
			winner = i
		case errors.Is(err, want):
		case errors.Is(err, store.ErrConflict):
			conflicts++
		default:
			t.Errorf("goroutine %d: unexpected error %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("none of %d goroutines succeeded", len(errs))
	}
	if conflicts > 0 {
		t.Logf("%d of %d goroutines gave up with ErrConflict", conflicts, len(errs))
	}
	return winner
}

// wantErr fails the test unless errors.Is(err, want).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

// must fails the test now on an unexpected error.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

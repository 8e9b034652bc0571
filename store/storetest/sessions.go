package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

func newSession(id, userID string, now time.Time) *store.Session {
	return &store.Session{
		ID: id, UserID: userID, Email: userID + "@example.com", Method: "test",
		CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(12 * time.Hour), Idle: 2 * time.Hour,
	}
}

func testSessions(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, c := newStore(t, newBackend)
	now := c.Now()
	a := newSession("sess-a", "u1", now)
	must(t, "CreateSession", s.CreateSession(ctx, a))
	must(t, "CreateSession", s.CreateSession(ctx, newSession("sess-b", "u1", now)))
	must(t, "CreateSession", s.CreateSession(ctx, newSession("sess-c", "u2", now)))
	wantErr(t, "CreateSession twice", s.CreateSession(ctx, newSession("sess-a", "u1", now)), store.ErrAlreadyExists)
	expired := newSession("sess-old", "u1", now.Add(-13*time.Hour))
	if err := s.CreateSession(ctx, expired); err == nil {
		t.Errorf("CreateSession of an expired session succeeded")
	}

	got, err := s.GetSession(ctx, "sess-a")
	must(t, "GetSession", err)
	if got.UserID != "u1" || got.Email != a.Email || got.Method != "test" || !got.ExpiresAt.Equal(a.ExpiresAt) ||
		!got.LastSeen.Equal(now) || got.Idle != a.Idle {
		t.Errorf("GetSession = %+v, want %+v", got, a)
	}
	_, err = s.GetSession(ctx, "nope")
	wantErr(t, "GetSession(unknown)", err, store.ErrNotFound)

	c.Advance(time.Hour)
	must(t, "TouchSession", s.TouchSession(ctx, "sess-a", c.Now()))
	got, err = s.GetSession(ctx, "sess-a")
	must(t, "GetSession", err)
	if !got.LastSeen.Equal(c.Now()) {
		t.Errorf("LastSeen after touch = %v, want %v", got.LastSeen, c.Now())
	}
	must(t, "TouchSession in the past", s.TouchSession(ctx, "sess-a", now))
	if got, _ := s.GetSession(ctx, "sess-a"); got == nil || !got.LastSeen.Equal(c.Now()) {
		t.Errorf("an older touch moved LastSeen back: %+v", got)
	}
	wantErr(t, "TouchSession(unknown)", s.TouchSession(ctx, "nope", c.Now()), store.ErrNotFound)

	list, err := s.UserSessions(ctx, "u1")
	must(t, "UserSessions", err)
	if ids := sessionIDs(list); !slices.Equal(ids, []string{"sess-a", "sess-b"}) {
		t.Errorf("UserSessions(u1) = %v", ids)
	}

	del, err := s.DeleteSession(ctx, "sess-b")
	must(t, "DeleteSession", err)
	if del == nil || del.ID != "sess-b" {
		t.Errorf("DeleteSession returned %+v", del)
	}
	_, err = s.GetSession(ctx, "sess-b")
	wantErr(t, "GetSession after delete", err, store.ErrNotFound)
	if del, err := s.DeleteSession(ctx, "sess-b"); err != nil || del != nil {
		t.Errorf("DeleteSession of a missing session = %+v, %v", del, err)
	}

	must(t, "CreateSession", s.CreateSession(ctx, newSession("sess-d", "u1", c.Now())))
	ids, err := s.DeleteUserSessions(ctx, "u1")
	must(t, "DeleteUserSessions", err)
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"sess-a", "sess-d"}) {
		t.Errorf("DeleteUserSessions = %v, want [sess-a sess-d]", ids)
	}
	for _, id := range ids {
		_, err := s.GetSession(ctx, id)
		wantErr(t, "GetSession after DeleteUserSessions", err, store.ErrNotFound)
	}
	if list, err := s.UserSessions(ctx, "u1"); err != nil || len(list) != 0 {
		t.Errorf("UserSessions after DeleteUserSessions = %v, %v", list, err)
	}
	if _, err := s.GetSession(ctx, "sess-c"); err != nil {
		t.Errorf("another user's session went too: %v", err)
	}
}

func sessionIDs(list []store.Session) []string {
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

// The store's clock decides idle and absolute expiry, whatever the backend
// still holds.
func testSessionIdleExpiry(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, c := newStore(t, newBackend)
	start := c.Now()
	must(t, "CreateSession", s.CreateSession(ctx, newSession("idle", "u1", start)))
	must(t, "CreateSession", s.CreateSession(ctx, newSession("busy", "u1", start)))

	// Touched every 90 minutes (idle limit 2h), "busy" lives until its 12h
	// absolute expiry and not a moment longer.
	for c.Now().Sub(start) < 12*time.Hour {
		if _, err := s.GetSession(ctx, "busy"); err != nil {
			t.Fatalf("active session gone after %v: %v", c.Now().Sub(start), err)
		}
		must(t, "TouchSession", s.TouchSession(ctx, "busy", c.Now()))
		c.Advance(90 * time.Minute)
	}
	_, err := s.GetSession(ctx, "busy")
	wantErr(t, "GetSession at the absolute expiry", err, store.ErrNotFound)
	wantErr(t, "TouchSession at the absolute expiry", s.TouchSession(ctx, "busy", c.Now()), store.ErrNotFound)

	_, err = s.GetSession(ctx, "idle")
	wantErr(t, "GetSession of an idle session", err, store.ErrNotFound)
	if list, err := s.UserSessions(ctx, "u1"); err != nil || len(list) != 0 {
		t.Errorf("UserSessions lists expired sessions: %v, %v", sessionIDs(list), err)
	}

	// Idle expiry exactly at the deadline.
	s2, c2 := newStore(t, newBackend)
	must(t, "CreateSession", s2.CreateSession(ctx, newSession("edge", "u9", c2.Now())))
	c2.Advance(2*time.Hour - time.Second)
	if _, err := s2.GetSession(ctx, "edge"); err != nil {
		t.Errorf("session gone a second before its idle deadline: %v", err)
	}
	c2.Advance(time.Second)
	if _, err := s2.GetSession(ctx, "edge"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session alive at its idle deadline: %v", err)
	}
}

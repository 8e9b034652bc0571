package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

func mkUser(t *testing.T, s *store.Store, email string) *store.User {
	t.Helper()
	u := &store.User{Email: email, Name: email}
	must(t, "CreateUser "+email, s.CreateUser(t.Context(), u))
	return u
}

func userEmails(list []store.User) []string {
	var out []string
	for _, u := range list {
		out = append(out, u.Email)
	}
	slices.Sort(out)
	return out
}

func testUsers(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, c := newStore(t, newBackend)
	alice := mkUser(t, s, " Alice@Acme.COM ")
	if alice.Email != "alice@acme.com" || alice.ID == "" || !alice.CreatedAt.Equal(c.Now()) {
		t.Errorf("CreateUser stored %+v; want email lower-cased, ID and CreatedAt filled", alice)
	}
	bob := mkUser(t, s, "bob@acme.com")
	mkUser(t, s, "carol@beta.io")
	wantErr(t, "CreateUser with a taken email", s.CreateUser(ctx, &store.User{Email: "ALICE@acme.com"}), store.ErrAlreadyExists)
	for _, bad := range []string{"", "alice", "@acme.com", "alice@", "a@b@c.com", "a b@c.com"} {
		wantErr(t, "CreateUser "+bad, s.CreateUser(ctx, &store.User{Email: bad}), store.ErrInvalid)
	}

	got, err := s.GetUser(ctx, alice.ID)
	must(t, "GetUser", err)
	if got.Email != "alice@acme.com" || got.Name != alice.Name {
		t.Errorf("GetUser = %+v", got)
	}
	got, err = s.GetUserByEmail(ctx, "ALICE@ACME.COM")
	must(t, "GetUserByEmail", err)
	if got.ID != alice.ID {
		t.Errorf("GetUserByEmail = %+v", got)
	}
	_, err = s.GetUserByEmail(ctx, "nobody@acme.com")
	wantErr(t, "GetUserByEmail(unknown)", err, store.ErrNotFound)
	_, err = s.GetUser(ctx, "nope")
	wantErr(t, "GetUser(unknown)", err, store.ErrNotFound)

	all, err := s.ListUsers(ctx)
	must(t, "ListUsers", err)
	if got := userEmails(all); !slices.Equal(got, []string{"alice@acme.com", "bob@acme.com", "carol@beta.io"}) {
		t.Errorf("ListUsers = %v", got)
	}
	onAcme, err := s.ListUsersByDomain(ctx, "ACME.com")
	must(t, "ListUsersByDomain", err)
	if got := userEmails(onAcme); !slices.Equal(got, []string{"alice@acme.com", "bob@acme.com"}) {
		t.Errorf("ListUsersByDomain(acme.com) = %v", got)
	}

	// An email change moves the unique key atomically.
	c.Advance(time.Minute)
	upd, err := s.UpdateUser(ctx, alice.ID, func(u *store.User) error {
		u.Email = "Alice@Beta.io"
		u.LastLoginAt = c.Now()
		u.IdPGroups = []string{"eng"}
		return nil
	})
	must(t, "UpdateUser email", err)
	if upd.Email != "alice@beta.io" || !upd.LastLoginAt.Equal(c.Now()) {
		t.Errorf("UpdateUser returned %+v", upd)
	}
	if got, err := s.GetUserByEmail(ctx, "alice@beta.io"); err != nil || got.ID != alice.ID || !slices.Equal(got.IdPGroups, []string{"eng"}) {
		t.Errorf("GetUserByEmail(new email) = %+v, %v", got, err)
	}
	_, err = s.GetUserByEmail(ctx, "alice@acme.com")
	wantErr(t, "GetUserByEmail(old email)", err, store.ErrNotFound)
	if onBeta, _ := s.ListUsersByDomain(ctx, "beta.io"); !slices.Equal(userEmails(onBeta), []string{"alice@beta.io", "carol@beta.io"}) {
		t.Errorf("ListUsersByDomain(beta.io) after the move = %v", userEmails(onBeta))
	}
	mkUser(t, s, "alice@acme.com") // the old email is free again

	_, err = s.UpdateUser(ctx, bob.ID, func(u *store.User) error { u.Email = "CAROL@beta.io"; u.Name = "lost"; return nil })
	wantErr(t, "UpdateUser to a taken email", err, store.ErrAlreadyExists)
	_, err = s.UpdateUser(ctx, bob.ID, func(u *store.User) error { u.Email = "not-an-email"; return nil })
	wantErr(t, "UpdateUser to a bad email", err, store.ErrInvalid)
	_, err = s.UpdateUser(ctx, bob.ID, func(u *store.User) error { u.ID = "x"; return nil })
	wantErr(t, "UpdateUser changing the ID", err, store.ErrInvalid)
	if got, _ := s.GetUser(ctx, bob.ID); got == nil || got.Email != "bob@acme.com" || got.Name != "bob@acme.com" {
		t.Errorf("failed updates changed the user: %+v", got)
	}
	if got, err := s.GetUserByEmail(ctx, "carol@beta.io"); err != nil || got.ID == bob.ID {
		t.Errorf("a failed email change disturbed the taken email: %+v, %v", got, err)
	}
	_, err = s.UpdateUser(ctx, "nope", func(*store.User) error { return nil })
	wantErr(t, "UpdateUser(unknown)", err, store.ErrNotFound)
}

// 20 goroutines create a user with the same email (in different cases):
// exactly one account exists afterwards.
func testUserEmailRace(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, _ := newStore(t, newBackend)
	ids := make([]string, 20)
	errs := race(20, func(i int) error {
		email := "race@acme.com"
		if i%2 == 1 {
			email = strings.ToUpper(email)
		}
		u := &store.User{Email: email, Name: fmt.Sprint(i)}
		err := s.CreateUser(ctx, u)
		ids[i] = u.ID
		return err
	})
	winner := oneWinner(t, errs, store.ErrAlreadyExists)
	got, err := s.GetUserByEmail(ctx, "race@acme.com")
	must(t, "GetUserByEmail", err)
	if got.ID != ids[winner] {
		t.Errorf("the email points at %s, the winner created %s", got.ID, ids[winner])
	}
	if all, _ := s.ListUsers(ctx); len(all) != 1 {
		t.Errorf("%d users exist after the race, want 1", len(all))
	}
}

func testIdentities(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, _ := newStore(t, newBackend)
	alice, bob := mkUser(t, s, "alice@acme.com"), mkUser(t, s, "bob@acme.com")
	const okta = "https://acme.okta.com/app/exk1"
	must(t, "LinkIdentity", s.LinkIdentity(ctx, store.Identity{Issuer: okta, Subject: "00u1", UserID: alice.ID}))
	must(t, "LinkIdentity again", s.LinkIdentity(ctx, store.Identity{Issuer: okta, Subject: "00u1", UserID: alice.ID}))
	wantErr(t, "LinkIdentity to a second user",
		s.LinkIdentity(ctx, store.Identity{Issuer: okta, Subject: "00u1", UserID: bob.ID}), store.ErrAlreadyExists)
	wantErr(t, "LinkIdentity to a missing user",
		s.LinkIdentity(ctx, store.Identity{Issuer: okta, Subject: "00u9", UserID: "nope"}), store.ErrNotFound)
	wantErr(t, "LinkIdentity without subject",
		s.LinkIdentity(ctx, store.Identity{Issuer: okta, UserID: alice.ID}), store.ErrInvalid)
	// Separators inside issuer or subject cannot make two pairs collide.
	must(t, "LinkIdentity", s.LinkIdentity(ctx, store.Identity{Issuer: "https://x/a", Subject: "b/c", UserID: alice.ID}))
	must(t, "LinkIdentity", s.LinkIdentity(ctx, store.Identity{Issuer: "https://x/a/b", Subject: "c", UserID: bob.ID}))
	// The subject is case-sensitive.
	must(t, "LinkIdentity", s.LinkIdentity(ctx, store.Identity{Issuer: okta, Subject: "00U1", UserID: bob.ID}))

	for _, c := range []struct{ iss, sub, want string }{
		{okta, "00u1", alice.ID}, {"https://x/a", "b/c", alice.ID}, {"https://x/a/b", "c", bob.ID}, {okta, "00U1", bob.ID},
	} {
		got, err := s.UserByIdentity(ctx, c.iss, c.sub)
		if err != nil || got.ID != c.want {
			t.Errorf("UserByIdentity(%q, %q) = %+v, %v; want user %s", c.iss, c.sub, got, err, c.want)
		}
	}
	_, err := s.UserByIdentity(ctx, okta, "other")
	wantErr(t, "UserByIdentity(unknown)", err, store.ErrNotFound)
	_, err = s.UserByIdentity(ctx, "https://other.example", "00u1")
	wantErr(t, "UserByIdentity(same subject, other issuer)", err, store.ErrNotFound)

	list, err := s.ListIdentities(ctx, alice.ID)
	must(t, "ListIdentities", err)
	if len(list) != 2 {
		t.Errorf("ListIdentities(alice) = %+v, want 2", list)
	}
	must(t, "UnlinkIdentity", s.UnlinkIdentity(ctx, okta, "00u1"))
	_, err = s.UserByIdentity(ctx, okta, "00u1")
	wantErr(t, "UserByIdentity after unlink", err, store.ErrNotFound)
	wantErr(t, "UnlinkIdentity twice", s.UnlinkIdentity(ctx, okta, "00u1"), store.ErrNotFound)
	must(t, "LinkIdentity after unlink", s.LinkIdentity(ctx, store.Identity{Issuer: okta, Subject: "00u1", UserID: bob.ID}))
	if list, _ := s.ListIdentities(ctx, alice.ID); len(list) != 1 {
		t.Errorf("ListIdentities(alice) after unlink = %+v", list)
	}
}

package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

func putMember(t *testing.T, s *store.Store, m store.Membership) *store.Membership {
	t.Helper()
	if m.Role == "" {
		m.Role = store.RoleMember
	}
	must(t, "PutMembership", s.PutMembership(t.Context(), &m))
	return &m
}

func memberUsers(list []store.Membership) []string {
	var out []string
	for _, m := range list {
		out = append(out, m.UserID)
	}
	slices.Sort(out)
	return out
}

func memberOrgs(list []store.Membership) []string {
	var out []string
	for _, m := range list {
		out = append(out, m.OrgID)
	}
	slices.Sort(out)
	return out
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func testMemberships(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, c := newStore(t, newBackend)
	p := mkParent(t, s, "P")
	o1, o2 := mkOrg(t, s, p.ID, "one"), mkOrg(t, s, p.ID, "two")
	alice, bob := mkUser(t, s, "alice@acme.com"), mkUser(t, s, "bob@acme.com")

	m := putMember(t, s, store.Membership{OrgID: o1.ID, UserID: alice.ID, Role: store.RoleOwner, Source: "invite"})
	if m.Status != store.MemberActive || !m.CreatedAt.Equal(c.Now()) {
		t.Errorf("PutMembership stored %+v; want status active and CreatedAt now", m)
	}
	putMember(t, s, store.Membership{OrgID: o1.ID, UserID: bob.ID, Status: store.MemberInvited})
	putMember(t, s, store.Membership{OrgID: o2.ID, UserID: alice.ID})

	wantErr(t, "PutMembership in a missing org",
		s.PutMembership(ctx, &store.Membership{OrgID: "nope", UserID: alice.ID, Role: store.RoleMember}), store.ErrNotFound)
	wantErr(t, "PutMembership of a missing user",
		s.PutMembership(ctx, &store.Membership{OrgID: o1.ID, UserID: "nope", Role: store.RoleMember}), store.ErrNotFound)
	wantErr(t, "PutMembership with an unknown role",
		s.PutMembership(ctx, &store.Membership{OrgID: o1.ID, UserID: alice.ID, Role: "god"}), store.ErrInvalid)
	wantErr(t, "PutMembership with an unknown status",
		s.PutMembership(ctx, &store.Membership{OrgID: o1.ID, UserID: alice.ID, Role: store.RoleMember, Status: "zombie"}), store.ErrInvalid)

	got, err := s.GetMembership(ctx, o1.ID, alice.ID)
	must(t, "GetMembership", err)
	if got.Role != store.RoleOwner || got.Source != "invite" {
		t.Errorf("GetMembership = %+v", got)
	}
	_, err = s.GetMembership(ctx, o2.ID, bob.ID)
	wantErr(t, "GetMembership(not a member)", err, store.ErrNotFound)

	// Replacing keeps CreatedAt when the new record has none.
	c.Advance(time.Hour)
	r := putMember(t, s, store.Membership{OrgID: o1.ID, UserID: alice.ID, Role: store.RoleAdmin})
	if !r.CreatedAt.Equal(m.CreatedAt) || r.Role != store.RoleAdmin {
		t.Errorf("replaced membership = %+v; want role admin and the original CreatedAt %v", r, m.CreatedAt)
	}

	members, err := s.ListOrgMembers(ctx, o1.ID)
	must(t, "ListOrgMembers", err)
	if got := memberUsers(members); !slices.Equal(got, sorted(alice.ID, bob.ID)) {
		t.Errorf("ListOrgMembers(one) = %v", got)
	}
	mine, err := s.ListUserMemberships(ctx, alice.ID)
	must(t, "ListUserMemberships", err)
	if got := memberOrgs(mine); !slices.Equal(got, sorted(o1.ID, o2.ID)) {
		t.Errorf("ListUserMemberships(alice) = %v", got)
	}
	page1, err := s.ListOrgMembersPage(ctx, o1.ID, "", 1)
	must(t, "ListOrgMembersPage", err)
	if len(page1) != 1 {
		t.Fatalf("first page = %+v", page1)
	}
	page2, err := s.ListOrgMembersPage(ctx, o1.ID, page1[0].UserID, 5)
	must(t, "ListOrgMembersPage", err)
	if len(page2) != 1 || page2[0].UserID == page1[0].UserID {
		t.Errorf("second page = %+v", page2)
	}

	upd, err := s.UpdateMembership(ctx, o1.ID, bob.ID, func(m *store.Membership) error {
		m.Status = store.MemberActive
		m.Role = store.RoleAdmin
		return nil
	})
	must(t, "UpdateMembership", err)
	if upd.Status != store.MemberActive || upd.Role != store.RoleAdmin {
		t.Errorf("UpdateMembership returned %+v", upd)
	}
	_, err = s.UpdateMembership(ctx, o1.ID, bob.ID, func(m *store.Membership) error { m.OrgID = o2.ID; return nil })
	wantErr(t, "UpdateMembership moving org", err, store.ErrInvalid)
	_, err = s.UpdateMembership(ctx, o1.ID, bob.ID, func(m *store.Membership) error { m.Role = "nobody"; return nil })
	wantErr(t, "UpdateMembership to an unknown role", err, store.ErrInvalid)
	_, err = s.UpdateMembership(ctx, o2.ID, bob.ID, func(*store.Membership) error { return nil })
	wantErr(t, "UpdateMembership(not a member)", err, store.ErrNotFound)
	if got, _ := s.GetMembership(ctx, o1.ID, bob.ID); got == nil || got.Role != store.RoleAdmin {
		t.Errorf("failed updates changed the membership: %+v", got)
	}

	must(t, "DeleteMembership", s.DeleteMembership(ctx, o1.ID, alice.ID))
	_, err = s.GetMembership(ctx, o1.ID, alice.ID)
	wantErr(t, "GetMembership after delete", err, store.ErrNotFound)
	wantErr(t, "DeleteMembership twice", s.DeleteMembership(ctx, o1.ID, alice.ID), store.ErrNotFound)
	if got, _ := s.ListOrgMembers(ctx, o1.ID); !slices.Equal(memberUsers(got), []string{bob.ID}) {
		t.Errorf("ListOrgMembers after delete = %v", memberUsers(got))
	}
	if got, _ := s.ListUserMemberships(ctx, alice.ID); !slices.Equal(memberOrgs(got), []string{o2.ID}) {
		t.Errorf("ListUserMemberships after delete = %v", memberOrgs(got))
	}
}

func testMembershipSCIMKeys(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, _ := newStore(t, newBackend)
	p := mkParent(t, s, "P")
	o1, o2 := mkOrg(t, s, p.ID, "one"), mkOrg(t, s, p.ID, "two")
	alice, bob := mkUser(t, s, "alice@acme.com"), mkUser(t, s, "bob@acme.com")

	putMember(t, s, store.Membership{OrgID: o1.ID, UserID: alice.ID, Source: "scim", SCIMUserName: "Alice@Acme.com", SCIMExternalID: "ext-A"})
	clash := &store.Membership{OrgID: o1.ID, UserID: bob.ID, Role: store.RoleMember, SCIMUserName: "alice@ACME.com"}
	wantErr(t, "PutMembership with a taken SCIM userName", s.PutMembership(ctx, clash), store.ErrAlreadyExists)
	clash = &store.Membership{OrgID: o1.ID, UserID: bob.ID, Role: store.RoleMember, SCIMUserName: "bob", SCIMExternalID: "ext-A"}
	wantErr(t, "PutMembership with a taken SCIM externalId", s.PutMembership(ctx, clash), store.ErrAlreadyExists)
	_, err := s.GetMembership(ctx, o1.ID, bob.ID)
	wantErr(t, "a refused PutMembership left a membership", err, store.ErrNotFound)
	_, err = s.MembershipBySCIMUserName(ctx, o1.ID, "bob")
	wantErr(t, "a refused PutMembership left its userName key", err, store.ErrNotFound)
	// Another org has its own namespace; externalId is case-exact.
	putMember(t, s, store.Membership{OrgID: o2.ID, UserID: bob.ID, SCIMUserName: "alice@acme.com", SCIMExternalID: "ext-A"})
	putMember(t, s, store.Membership{OrgID: o1.ID, UserID: bob.ID, SCIMUserName: "bob@acme.com", SCIMExternalID: "EXT-a"})

	for _, c := range []struct{ org, name, want string }{
		{o1.ID, "ALICE@acme.com", alice.ID}, {o2.ID, "alice@acme.com", bob.ID}, {o1.ID, "Bob@Acme.Com", bob.ID},
	} {
		got, err := s.MembershipBySCIMUserName(ctx, c.org, c.name)
		if err != nil || got.UserID != c.want || got.OrgID != c.org {
			t.Errorf("MembershipBySCIMUserName(%s, %q) = %+v, %v; want user %s", c.org, c.name, got, err, c.want)
		}
	}
	for _, c := range []struct{ org, ext, want string }{{o1.ID, "ext-A", alice.ID}, {o1.ID, "EXT-a", bob.ID}, {o2.ID, "ext-A", bob.ID}} {
		got, err := s.MembershipBySCIMExternalID(ctx, c.org, c.ext)
		if err != nil || got.UserID != c.want {
			t.Errorf("MembershipBySCIMExternalID(%s, %q) = %+v, %v; want user %s", c.org, c.ext, got, err, c.want)
		}
	}
	_, err = s.MembershipBySCIMExternalID(ctx, o1.ID, "ext-a")
	wantErr(t, "MembershipBySCIMExternalID(other case)", err, store.ErrNotFound)
	_, err = s.MembershipBySCIMUserName(ctx, o1.ID, "")
	wantErr(t, "MembershipBySCIMUserName(empty)", err, store.ErrNotFound)

	// Renames move the keys; a taken name is refused and changes nothing.
	_, err = s.UpdateMembership(ctx, o1.ID, alice.ID, func(m *store.Membership) error { m.SCIMUserName = "a.smith@acme.com"; return nil })
	must(t, "UpdateMembership rename", err)
	if got, err := s.MembershipBySCIMUserName(ctx, o1.ID, "A.Smith@acme.com"); err != nil || got.UserID != alice.ID {
		t.Errorf("lookup by new userName = %+v, %v", got, err)
	}
	_, err = s.MembershipBySCIMUserName(ctx, o1.ID, "alice@acme.com")
	wantErr(t, "lookup by old userName", err, store.ErrNotFound)
	_, err = s.UpdateMembership(ctx, o1.ID, bob.ID, func(m *store.Membership) error {
		m.SCIMUserName = "a.smith@ACME.com"
		m.Role = store.RoleOwner
		return nil
	})
	wantErr(t, "UpdateMembership to a taken userName", err, store.ErrAlreadyExists)
	if got, _ := s.GetMembership(ctx, o1.ID, bob.ID); got == nil || got.SCIMUserName != "bob@acme.com" || got.Role != store.RoleMember {
		t.Errorf("a refused rename changed the membership: %+v", got)
	}
	if got, err := s.MembershipBySCIMUserName(ctx, o1.ID, "bob@acme.com"); err != nil || got.UserID != bob.ID {
		t.Errorf("a refused rename moved bob's key: %+v, %v", got, err)
	}
	// Clearing the SCIM fields releases the keys; re-putting replaces them.
	_, err = s.UpdateMembership(ctx, o1.ID, alice.ID, func(m *store.Membership) error { m.SCIMUserName, m.SCIMExternalID = "", ""; return nil })
	must(t, "UpdateMembership clear", err)
	_, err = s.MembershipBySCIMExternalID(ctx, o1.ID, "ext-A")
	wantErr(t, "lookup by a cleared externalId", err, store.ErrNotFound)
	putMember(t, s, store.Membership{OrgID: o1.ID, UserID: bob.ID, SCIMUserName: "a.smith@acme.com", SCIMExternalID: "ext-A"})
	_, err = s.MembershipBySCIMUserName(ctx, o1.ID, "bob@acme.com")
	wantErr(t, "lookup by a replaced userName", err, store.ErrNotFound)
	_, err = s.MembershipBySCIMExternalID(ctx, o1.ID, "EXT-a")
	wantErr(t, "lookup by a replaced externalId", err, store.ErrNotFound)

	must(t, "DeleteMembership", s.DeleteMembership(ctx, o1.ID, bob.ID))
	_, err = s.MembershipBySCIMUserName(ctx, o1.ID, "a.smith@acme.com")
	wantErr(t, "lookup after DeleteMembership", err, store.ErrNotFound)
	putMember(t, s, store.Membership{OrgID: o1.ID, UserID: alice.ID, SCIMUserName: "a.smith@acme.com", SCIMExternalID: "ext-A"})
}

// DeleteUser removes the user and everything hanging off it, and frees
// its email, identities and SCIM names for reuse.
func testDeleteUser(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, c := newStore(t, newBackend)
	p := mkParent(t, s, "P")
	o1, o2 := mkOrg(t, s, p.ID, "one"), mkOrg(t, s, p.ID, "two")
	alice, bob := mkUser(t, s, "alice@acme.com"), mkUser(t, s, "bob@acme.com")
	must(t, "LinkIdentity", s.LinkIdentity(ctx, store.Identity{Issuer: "iss", Subject: "alice", UserID: alice.ID}))
	for _, o := range []*store.Org{o1, o2} {
		putMember(t, s, store.Membership{OrgID: o.ID, UserID: alice.ID, SCIMUserName: "alice", SCIMExternalID: "x-alice"})
		putMember(t, s, store.Membership{OrgID: o.ID, UserID: bob.ID, SCIMUserName: "bob"})
	}
	g := &store.Group{OrgID: o1.ID, DisplayName: "eng", Members: []string{alice.ID, bob.ID}}
	must(t, "CreateGroup", s.CreateGroup(ctx, g))
	for _, id := range []string{"s-alice-1", "s-alice-2"} {
		must(t, "CreateSession", s.CreateSession(ctx, newSession(id, alice.ID, c.Now())))
	}
	must(t, "CreateSession", s.CreateSession(ctx, newSession("s-bob", bob.ID, c.Now())))

	sessions, err := s.DeleteUser(ctx, alice.ID)
	must(t, "DeleteUser", err)
	if !slices.Equal(sorted(sessions...), []string{"s-alice-1", "s-alice-2"}) {
		t.Errorf("DeleteUser returned sessions %v", sessions)
	}
	_, err = s.GetUser(ctx, alice.ID)
	wantErr(t, "GetUser after delete", err, store.ErrNotFound)
	_, err = s.GetUserByEmail(ctx, "alice@acme.com")
	wantErr(t, "GetUserByEmail after delete", err, store.ErrNotFound)
	_, err = s.UserByIdentity(ctx, "iss", "alice")
	wantErr(t, "UserByIdentity after delete", err, store.ErrNotFound)
	for _, o := range []*store.Org{o1, o2} {
		_, err = s.GetMembership(ctx, o.ID, alice.ID)
		wantErr(t, "GetMembership after delete", err, store.ErrNotFound)
		_, err = s.MembershipBySCIMUserName(ctx, o.ID, "alice")
		wantErr(t, "MembershipBySCIMUserName after delete", err, store.ErrNotFound)
		_, err = s.MembershipBySCIMExternalID(ctx, o.ID, "x-alice")
		wantErr(t, "MembershipBySCIMExternalID after delete", err, store.ErrNotFound)
		if got, _ := s.ListOrgMembers(ctx, o.ID); !slices.Equal(memberUsers(got), []string{bob.ID}) {
			t.Errorf("ListOrgMembers after delete = %v", memberUsers(got))
		}
	}
	if got, _ := s.GetGroup(ctx, o1.ID, g.ID); got == nil || !slices.Equal(got.Members, []string{bob.ID}) {
		t.Errorf("group after DeleteUser = %+v, want only bob", got)
	}
	if got, _ := s.GroupsOfUser(ctx, o1.ID, alice.ID); len(got) != 0 {
		t.Errorf("GroupsOfUser after DeleteUser = %+v", got)
	}
	for _, id := range []string{"s-alice-1", "s-alice-2"} {
		_, err = s.GetSession(ctx, id)
		wantErr(t, "GetSession after DeleteUser", err, store.ErrNotFound)
	}
	if list, _ := s.UserSessions(ctx, alice.ID); len(list) != 0 {
		t.Errorf("UserSessions after DeleteUser = %v", list)
	}
	if _, err := s.GetSession(ctx, "s-bob"); err != nil {
		t.Errorf("bob's session went too: %v", err)
	}
	if all, _ := s.ListUsers(ctx); len(all) != 1 {
		t.Errorf("ListUsers after delete has %d users", len(all))
	}
	_, err = s.DeleteUser(ctx, alice.ID)
	wantErr(t, "DeleteUser twice", err, store.ErrNotFound)

	// Everything alice held is free for a new account.
	again := mkUser(t, s, "alice@acme.com")
	must(t, "LinkIdentity", s.LinkIdentity(ctx, store.Identity{Issuer: "iss", Subject: "alice", UserID: again.ID}))
	putMember(t, s, store.Membership{OrgID: o1.ID, UserID: again.ID, SCIMUserName: "alice", SCIMExternalID: "x-alice"})
}

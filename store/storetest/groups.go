package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

func groupNames(list []store.Group) []string {
	var out []string
	for _, g := range list {
		out = append(out, g.DisplayName)
	}
	slices.Sort(out)
	return out
}

func testGroups(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, c := newStore(t, newBackend)
	p := mkParent(t, s, "P")
	o1, o2 := mkOrg(t, s, p.ID, "one"), mkOrg(t, s, p.ID, "two")

	eng := &store.Group{OrgID: o1.ID, DisplayName: "anthropic-one-admin", ExternalID: "okta-1"}
	must(t, "CreateGroup", s.CreateGroup(ctx, eng))
	if eng.ID == "" || !eng.CreatedAt.Equal(c.Now()) || !eng.UpdatedAt.Equal(c.Now()) {
		t.Errorf("CreateGroup did not fill ID and times: %+v", eng)
	}
	must(t, "CreateGroup", s.CreateGroup(ctx, &store.Group{OrgID: o1.ID, DisplayName: "sales"}))
	wantErr(t, "CreateGroup with a taken name",
		s.CreateGroup(ctx, &store.Group{OrgID: o1.ID, DisplayName: "Anthropic-One-ADMIN"}), store.ErrAlreadyExists)
	wantErr(t, "CreateGroup with a taken externalId",
		s.CreateGroup(ctx, &store.Group{OrgID: o1.ID, DisplayName: "other", ExternalID: "okta-1"}), store.ErrAlreadyExists)
	wantErr(t, "CreateGroup without a name", s.CreateGroup(ctx, &store.Group{OrgID: o1.ID, DisplayName: "  "}), store.ErrInvalid)
	wantErr(t, "CreateGroup in a missing org", s.CreateGroup(ctx, &store.Group{OrgID: "nope", DisplayName: "x"}), store.ErrNotFound)
	if _, err := s.GroupByDisplayName(ctx, o1.ID, "other"); err == nil {
		t.Errorf("a refused CreateGroup left its name key")
	}
	// Names and externalIds are per org.
	other := &store.Group{OrgID: o2.ID, DisplayName: "anthropic-one-admin", ExternalID: "okta-1"}
	must(t, "CreateGroup in another org", s.CreateGroup(ctx, other))

	got, err := s.GetGroup(ctx, o1.ID, eng.ID)
	must(t, "GetGroup", err)
	if got.DisplayName != eng.DisplayName || got.ExternalID != "okta-1" || got.OrgID != o1.ID {
		t.Errorf("GetGroup = %+v", got)
	}
	_, err = s.GetGroup(ctx, o2.ID, eng.ID)
	wantErr(t, "GetGroup through another org", err, store.ErrNotFound)
	got, err = s.GroupByDisplayName(ctx, o1.ID, "ANTHROPIC-one-admin")
	must(t, "GroupByDisplayName", err)
	if got.ID != eng.ID {
		t.Errorf("GroupByDisplayName = %+v", got)
	}
	got, err = s.GroupByExternalID(ctx, o2.ID, "okta-1")
	must(t, "GroupByExternalID", err)
	if got.ID != other.ID {
		t.Errorf("GroupByExternalID(two) = %+v", got)
	}
	_, err = s.GroupByExternalID(ctx, o1.ID, "")
	wantErr(t, "GroupByExternalID(empty)", err, store.ErrNotFound)
	list, err := s.ListGroups(ctx, o1.ID)
	must(t, "ListGroups", err)
	if got := groupNames(list); !slices.Equal(got, []string{"anthropic-one-admin", "sales"}) {
		t.Errorf("ListGroups(one) = %v", got)
	}

	// A rename moves the unique name key.
	c.Advance(time.Minute)
	upd, err := s.UpdateGroup(ctx, o1.ID, eng.ID, func(g *store.Group) error {
		g.DisplayName = "Engineering"
		g.ExternalID = "okta-2"
		return nil
	})
	must(t, "UpdateGroup rename", err)
	if upd.DisplayName != "Engineering" || !upd.UpdatedAt.Equal(c.Now()) || !upd.CreatedAt.Equal(eng.CreatedAt) {
		t.Errorf("UpdateGroup returned %+v", upd)
	}
	if got, err := s.GroupByDisplayName(ctx, o1.ID, "engineering"); err != nil || got.ID != eng.ID {
		t.Errorf("lookup by new name = %+v, %v", got, err)
	}
	_, err = s.GroupByDisplayName(ctx, o1.ID, "anthropic-one-admin")
	wantErr(t, "lookup by old name", err, store.ErrNotFound)
	_, err = s.GroupByExternalID(ctx, o1.ID, "okta-1")
	wantErr(t, "lookup by old externalId", err, store.ErrNotFound)
	must(t, "CreateGroup with the freed name", s.CreateGroup(ctx, &store.Group{OrgID: o1.ID, DisplayName: "anthropic-one-admin"}))

	_, err = s.UpdateGroup(ctx, o1.ID, eng.ID, func(g *store.Group) error { g.DisplayName = "SALES"; g.ExternalID = "lost"; return nil })
	wantErr(t, "UpdateGroup to a taken name", err, store.ErrAlreadyExists)
	_, err = s.UpdateGroup(ctx, o1.ID, eng.ID, func(g *store.Group) error { g.OrgID = o2.ID; return nil })
	wantErr(t, "UpdateGroup moving org", err, store.ErrInvalid)
	_, err = s.UpdateGroup(ctx, o2.ID, eng.ID, func(*store.Group) error { return nil })
	wantErr(t, "UpdateGroup through another org", err, store.ErrNotFound)
	if got, _ := s.GetGroup(ctx, o1.ID, eng.ID); got == nil || got.DisplayName != "Engineering" || got.ExternalID != "okta-2" {
		t.Errorf("failed updates changed the group: %+v", got)
	}
	if got, err := s.GroupByDisplayName(ctx, o1.ID, "sales"); err != nil || got.ID == eng.ID {
		t.Errorf("a refused rename disturbed the taken name: %+v, %v", got, err)
	}

	must(t, "DeleteGroup", s.DeleteGroup(ctx, o1.ID, eng.ID))
	_, err = s.GetGroup(ctx, o1.ID, eng.ID)
	wantErr(t, "GetGroup after delete", err, store.ErrNotFound)
	wantErr(t, "DeleteGroup twice", s.DeleteGroup(ctx, o1.ID, eng.ID), store.ErrNotFound)
	wantErr(t, "DeleteGroup through another org", s.DeleteGroup(ctx, o1.ID, other.ID), store.ErrNotFound)
	_, err = s.GroupByDisplayName(ctx, o1.ID, "engineering")
	wantErr(t, "lookup by a deleted group's name", err, store.ErrNotFound)
	must(t, "CreateGroup with a deleted group's name", s.CreateGroup(ctx, &store.Group{OrgID: o1.ID, DisplayName: "Engineering", ExternalID: "okta-2"}))
}

func testGroupMembers(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, _ := newStore(t, newBackend)
	p := mkParent(t, s, "P")
	o1, o2 := mkOrg(t, s, p.ID, "one"), mkOrg(t, s, p.ID, "two")
	alice, bob, carol := mkUser(t, s, "alice@acme.com"), mkUser(t, s, "bob@acme.com"), mkUser(t, s, "carol@acme.com")
	for _, u := range []*store.User{alice, bob, carol} {
		putMember(t, s, store.Membership{OrgID: o1.ID, UserID: u.ID})
	}
	putMember(t, s, store.Membership{OrgID: o2.ID, UserID: alice.ID})

	eng := &store.Group{OrgID: o1.ID, DisplayName: "eng", Members: []string{alice.ID, bob.ID, alice.ID}}
	must(t, "CreateGroup", s.CreateGroup(ctx, eng))
	if !slices.Equal(eng.Members, []string{alice.ID, bob.ID}) {
		t.Errorf("CreateGroup kept duplicate members: %v", eng.Members)
	}
	ops := &store.Group{OrgID: o1.ID, DisplayName: "ops", Members: []string{alice.ID}}
	must(t, "CreateGroup", s.CreateGroup(ctx, ops))
	must(t, "CreateGroup", s.CreateGroup(ctx, &store.Group{OrgID: o2.ID, DisplayName: "eng", Members: []string{alice.ID}}))
	wantErr(t, "CreateGroup with a non-member",
		s.CreateGroup(ctx, &store.Group{OrgID: o2.ID, DisplayName: "x", Members: []string{bob.ID}}), store.ErrNotFound)

	groupsOf := func(org, user string) []string {
		t.Helper()
		list, err := s.GroupsOfUser(ctx, org, user)
		must(t, "GroupsOfUser", err)
		return groupNames(list)
	}
	for _, c := range []struct {
		org, user string
		want      []string
	}{
		{o1.ID, alice.ID, []string{"eng", "ops"}}, {o1.ID, bob.ID, []string{"eng"}}, {o1.ID, carol.ID, nil},
		{o2.ID, alice.ID, []string{"eng"}}, {o2.ID, bob.ID, nil},
	} {
		if got := groupsOf(c.org, c.user); !slices.Equal(got, c.want) {
			t.Errorf("GroupsOfUser(%s, %s) = %v, want %v", c.org, c.user, got, c.want)
		}
	}

	_, err := s.UpdateGroup(ctx, o1.ID, eng.ID, func(g *store.Group) error {
		g.Members = []string{bob.ID, carol.ID}
		return nil
	})
	must(t, "UpdateGroup members", err)
	if got := groupsOf(o1.ID, alice.ID); !slices.Equal(got, []string{"ops"}) {
		t.Errorf("GroupsOfUser(alice) after removal = %v", got)
	}
	if got := groupsOf(o1.ID, carol.ID); !slices.Equal(got, []string{"eng"}) {
		t.Errorf("GroupsOfUser(carol) after add = %v", got)
	}
	_, err = s.UpdateGroup(ctx, o1.ID, eng.ID, func(g *store.Group) error {
		g.Members = append(g.Members, "not-a-member")
		return nil
	})
	wantErr(t, "UpdateGroup adding a non-member", err, store.ErrNotFound)
	if got, _ := s.GetGroup(ctx, o1.ID, eng.ID); got == nil || !slices.Equal(got.Members, []string{bob.ID, carol.ID}) {
		t.Errorf("a refused member change changed the group: %+v", got)
	}

	// Leaving the org takes the user out of its groups, and only its groups.
	must(t, "DeleteMembership", s.DeleteMembership(ctx, o1.ID, carol.ID))
	if got, _ := s.GetGroup(ctx, o1.ID, eng.ID); got == nil || !slices.Equal(got.Members, []string{bob.ID}) {
		t.Errorf("group after carol left the org = %+v", got)
	}
	if got := groupsOf(o1.ID, carol.ID); len(got) != 0 {
		t.Errorf("GroupsOfUser(carol) after leaving = %v", got)
	}
	must(t, "DeleteMembership", s.DeleteMembership(ctx, o1.ID, alice.ID))
	if got := groupsOf(o2.ID, alice.ID); !slices.Equal(got, []string{"eng"}) {
		t.Errorf("leaving one org took alice out of another org's group: %v", got)
	}
	if got, _ := s.GetGroup(ctx, o1.ID, ops.ID); got == nil || len(got.Members) != 0 {
		t.Errorf("ops after alice left = %+v", got)
	}

	must(t, "DeleteGroup", s.DeleteGroup(ctx, o1.ID, eng.ID))
	if got := groupsOf(o1.ID, bob.ID); len(got) != 0 {
		t.Errorf("GroupsOfUser(bob) after DeleteGroup = %v", got)
	}
}

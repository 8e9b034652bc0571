package provision

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssogate/ssogate/connector"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/bolt"
)

type fixture struct {
	st         *store.Store
	conn       *store.Connection
	org, other *store.Org
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	b, err := bolt.Open(filepath.Join(t.TempDir(), "p.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	st := store.New(b)
	ctx := context.Background()
	f := &fixture{st: st}
	for i, slug := range []string{"acme", "rival"} {
		p := &store.ParentOrg{Name: slug}
		if err := st.CreateParentOrg(ctx, p); err != nil {
			t.Fatal(err)
		}
		o := &store.Org{Slug: slug, Name: slug, ParentID: p.ID}
		if err := st.CreateOrg(ctx, o); err != nil {
			t.Fatal(err)
		}
		d := &store.Domain{Name: slug + ".com", ParentID: p.ID}
		if err := st.AddDomainClaim(ctx, d); err != nil {
			t.Fatal(err)
		}
		if _, err := st.VerifyDomainClaim(ctx, p.ID, d.Name, time.Now()); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			f.org = o
		} else {
			f.other = o
		}
	}
	f.conn = &store.Connection{ParentID: f.org.ParentID, Type: store.ConnSAML, Name: "okta", DefaultOrgID: f.org.ID}
	if err := st.CreateConnection(ctx, f.conn); err != nil {
		t.Fatal(err)
	}
	return f
}

func ident(sub, email string, groups ...string) *connector.Identity {
	return &connector.Identity{Issuer: "https://idp.acme.com", Subject: sub, Email: email, EmailVerified: true,
		GivenName: "Alice", FamilyName: "Smith", Groups: groups}
}

func TestJITCreatesUserAndMembership(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, _, err := SSO(ctx, f.st, f.conn, ident("s1", "Alice@ACME.com", "ssogate-acme-admin", "Everyone"), "ssogate-")
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "alice@acme.com" || u.Name != "Alice Smith" || u.CreatedBy != "jit" || len(u.IdPGroups) != 1 || u.LastLoginAt.IsZero() {
		t.Fatalf("user = %+v", u)
	}
	m, err := f.st.GetMembership(ctx, f.org.ID, u.ID)
	if err != nil || m.Role != store.RoleMember || m.Status != store.MemberActive || m.Source != "jit" {
		t.Fatalf("membership = %+v %v", m, err)
	}
	// The next sign-in updates the profile and finds the same account.
	id := ident("s1", "alice@acme.com")
	id.Name = "Alice S."
	u2, _, err := SSO(ctx, f.st, f.conn, id, "ssogate-")
	if err != nil || u2.ID != u.ID || u2.Name != "Alice S." || len(u2.IdPGroups) != 0 {
		t.Fatalf("second sign-in: %+v %v", u2, err)
	}
	// The IdP renames the account (same subject): the email follows.
	u3, _, err := SSO(ctx, f.st, f.conn, ident("s1", "alice.smith@acme.com"), "ssogate-")
	if err != nil || u3.ID != u.ID || u3.Email != "alice.smith@acme.com" {
		t.Fatalf("renamed: %+v %v", u3, err)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, _, err := SSO(ctx, f.st, f.conn, ident("s1", "bob@bob.com"), ""); connector.Reason(err) != ReasonOutsideOrg {
		t.Fatalf("unverified domain: %v", err)
	}
	if _, _, err := SSO(ctx, f.st, f.conn, ident("s1", "eve@rival.com"), ""); connector.Reason(err) != ReasonOutsideOrg {
		t.Fatalf("another parent org's domain: %v", err)
	}
	for _, bad := range []string{"", "a@b@acme.com", "evil.com<!---->@acme.com", "x@acme.com\u202e"} {
		if _, _, err := SSO(ctx, f.st, f.conn, ident("s1", bad), ""); connector.Reason(err) != ReasonBadEmail {
			t.Errorf("email %q: %v", bad, err)
		}
	}
	if users, _ := f.st.ListUsers(ctx); len(users) != 0 {
		t.Fatalf("refused sign-ins created users: %+v", users)
	}
	// An existing account linked to another subject at the same IdP.
	if _, _, err := SSO(ctx, f.st, f.conn, ident("s1", "carol@acme.com"), ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := SSO(ctx, f.st, f.conn, ident("s2", "carol@acme.com"), ""); connector.Reason(err) != ReasonAccountConflict {
		t.Fatalf("reassigned email: %v", err)
	}
	// A member deactivated by SCIM is not revived by signing in.
	u, _ := f.st.GetUserByEmail(ctx, "carol@acme.com")
	if _, err := f.st.UpdateMembership(ctx, f.org.ID, u.ID, func(m *store.Membership) error { m.Status = store.MemberInactive; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := SSO(ctx, f.st, f.conn, ident("s1", "carol@acme.com"), ""); connector.Reason(err) != ReasonDeactivated {
		t.Fatalf("deactivated: %v", err)
	}
}

func TestInvitedMemberBecomesActive(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u := &store.User{Email: "dave@acme.com", CreatedBy: "invite"}
	if err := f.st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := f.st.PutMembership(ctx, &store.Membership{OrgID: f.org.ID, UserID: u.ID, Role: store.RoleAdmin, Status: store.MemberInvited, Source: "invite"}); err != nil {
		t.Fatal(err)
	}
	got, _, err := SSO(ctx, f.st, f.conn, ident("d1", "dave@acme.com"), "")
	if err != nil || got.ID != u.ID {
		t.Fatalf("invited user: %+v %v", got, err)
	}
	m, _ := f.st.GetMembership(ctx, f.org.ID, u.ID)
	if m.Status != store.MemberActive || m.Role != store.RoleAdmin {
		t.Fatalf("membership = %+v; want active admin (the role from the invite)", m)
	}
}

// A tenant that copies another tenant's IdP issuer into its own SAML
// metadata must not reach the other tenant's accounts through it.
func TestIssuerSpoofingAcrossTenants(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rivalConn := &store.Connection{ParentID: f.other.ParentID, Type: store.ConnSAML, Name: "rival idp", DefaultOrgID: f.other.ID}
	if err := f.st.CreateConnection(ctx, rivalConn); err != nil {
		t.Fatal(err)
	}
	victim, _, err := SSO(ctx, f.st, rivalConn, ident("subject-1", "victim@rival.com"), "")
	if err != nil {
		t.Fatal(err)
	}
	// acme's connection asserts the rival IdP's issuer and the victim's subject.
	got, _, err := SSO(ctx, f.st, f.conn, ident("subject-1", "evil@acme.com"), "")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == victim.ID {
		t.Fatal("VULNERABILITY: another tenant's connection signed in to the victim's account")
	}
	if v, _ := f.st.GetUser(ctx, victim.ID); v.Email != "victim@rival.com" {
		t.Fatalf("the victim's account was changed: %+v", v)
	}
}

package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

func mkParent(t *testing.T, s *store.Store, name string) *store.ParentOrg {
	t.Helper()
	p := &store.ParentOrg{Name: name}
	must(t, "CreateParentOrg "+name, s.CreateParentOrg(t.Context(), p))
	return p
}

func mkOrg(t *testing.T, s *store.Store, parentID, slug string) *store.Org {
	t.Helper()
	o := &store.Org{Slug: slug, Name: slug, ParentID: parentID}
	must(t, "CreateOrg "+slug, s.CreateOrg(t.Context(), o))
	return o
}

func orgSlugs(list []store.Org) []string {
	var out []string
	for _, o := range list {
		out = append(out, o.Slug)
	}
	slices.Sort(out)
	return out
}

func testParentOrgs(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, c := newStore(t, newBackend)
	a := mkParent(t, s, "Acme")
	if a.ID == "" || !a.CreatedAt.Equal(c.Now()) {
		t.Errorf("CreateParentOrg did not fill ID and CreatedAt: %+v", a)
	}
	c.Advance(time.Second)
	b := mkParent(t, s, "Beta")
	wantErr(t, "CreateParentOrg with a taken ID", s.CreateParentOrg(ctx, &store.ParentOrg{ID: a.ID}), store.ErrAlreadyExists)
	wantErr(t, "CreateParentOrg with a bad ID", s.CreateParentOrg(ctx, &store.ParentOrg{ID: "a/b"}), store.ErrInvalid)

	got, err := s.GetParentOrg(ctx, a.ID)
	must(t, "GetParentOrg", err)
	if got.Name != "Acme" || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("GetParentOrg = %+v", got)
	}
	_, err = s.GetParentOrg(ctx, "missing")
	wantErr(t, "GetParentOrg(missing)", err, store.ErrNotFound)

	list, err := s.ListParentOrgs(ctx)
	must(t, "ListParentOrgs", err)
	if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
		t.Errorf("ListParentOrgs = %+v, want Acme then Beta", list)
	}

	upd, err := s.UpdateParentOrg(ctx, a.ID, func(p *store.ParentOrg) error {
		p.SSOEnforced = true
		p.Name = "Acme Inc"
		return nil
	})
	must(t, "UpdateParentOrg", err)
	if !upd.SSOEnforced || upd.Name != "Acme Inc" {
		t.Errorf("UpdateParentOrg returned %+v", upd)
	}
	if got, _ := s.GetParentOrg(ctx, a.ID); got == nil || !got.SSOEnforced || got.Name != "Acme Inc" {
		t.Errorf("update not stored: %+v", got)
	}
	boom := errors.New("boom")
	_, err = s.UpdateParentOrg(ctx, a.ID, func(p *store.ParentOrg) error { p.Name = "lost"; return boom })
	wantErr(t, "UpdateParentOrg with a failing callback", err, boom)
	_, err = s.UpdateParentOrg(ctx, a.ID, func(p *store.ParentOrg) error { p.ID = "other"; return nil })
	wantErr(t, "UpdateParentOrg changing the ID", err, store.ErrInvalid)
	if got, _ := s.GetParentOrg(ctx, a.ID); got == nil || got.Name != "Acme Inc" {
		t.Errorf("a failed update changed the record: %+v", got)
	}
	_, err = s.UpdateParentOrg(ctx, "missing", func(*store.ParentOrg) error { return nil })
	wantErr(t, "UpdateParentOrg(missing)", err, store.ErrNotFound)
}

func testOrgs(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, _ := newStore(t, newBackend)
	p1, p2 := mkParent(t, s, "One"), mkParent(t, s, "Two")
	acme := mkOrg(t, s, p1.ID, "Acme")
	if acme.Slug != "acme" || acme.ID == "" || acme.CreatedAt.IsZero() {
		t.Errorf("CreateOrg stored %+v; want slug lower-cased and ID, CreatedAt filled", acme)
	}
	mkOrg(t, s, p1.ID, "acme-labs")
	mkOrg(t, s, p2.ID, "beta")

	wantErr(t, "CreateOrg with a taken slug", s.CreateOrg(ctx, &store.Org{Slug: "ACME", ParentID: p2.ID}), store.ErrAlreadyExists)
	wantErr(t, "CreateOrg under a missing parent", s.CreateOrg(ctx, &store.Org{Slug: "orphan", ParentID: "missing"}), store.ErrNotFound)
	for _, bad := range []string{"", "a b", "a,b", "a:b", "a/b"} {
		wantErr(t, "CreateOrg slug "+bad, s.CreateOrg(ctx, &store.Org{Slug: bad, ParentID: p1.ID}), store.ErrInvalid)
	}

	got, err := s.GetOrg(ctx, acme.ID)
	must(t, "GetOrg", err)
	if got.Slug != "acme" || got.ParentID != p1.ID {
		t.Errorf("GetOrg = %+v", got)
	}
	got, err = s.GetOrgBySlug(ctx, "AcMe")
	must(t, "GetOrgBySlug", err)
	if got.ID != acme.ID {
		t.Errorf("GetOrgBySlug = %+v", got)
	}
	_, err = s.GetOrgBySlug(ctx, "nope")
	wantErr(t, "GetOrgBySlug(unknown)", err, store.ErrNotFound)
	_, err = s.GetOrg(ctx, "nope")
	wantErr(t, "GetOrg(unknown)", err, store.ErrNotFound)

	for _, c := range []struct {
		parent string
		want   []string
	}{{p1.ID, []string{"acme", "acme-labs"}}, {p2.ID, []string{"beta"}}, {"", []string{"acme", "acme-labs", "beta"}}, {"none", nil}} {
		list, err := s.ListOrgs(ctx, c.parent)
		must(t, "ListOrgs", err)
		if got := orgSlugs(list); !slices.Equal(got, c.want) {
			t.Errorf("ListOrgs(%q) = %v, want %v", c.parent, got, c.want)
		}
	}

	// A rename moves the unique slug: the old one is free, the new one resolves.
	upd, err := s.UpdateOrg(ctx, acme.ID, func(o *store.Org) error {
		o.Slug = "Acme-Corp"
		o.GroupMappings = true
		return nil
	})
	must(t, "UpdateOrg rename", err)
	if upd.Slug != "acme-corp" || !upd.GroupMappings {
		t.Errorf("UpdateOrg returned %+v", upd)
	}
	if got, err := s.GetOrgBySlug(ctx, "acme-corp"); err != nil || got.ID != acme.ID {
		t.Errorf("GetOrgBySlug(new slug) = %+v, %v", got, err)
	}
	_, err = s.GetOrgBySlug(ctx, "acme")
	wantErr(t, "GetOrgBySlug(old slug)", err, store.ErrNotFound)
	mkOrg(t, s, p2.ID, "acme") // the old slug is free again

	_, err = s.UpdateOrg(ctx, acme.ID, func(o *store.Org) error { o.Slug = "BETA"; o.Name = "lost"; return nil })
	wantErr(t, "UpdateOrg to a taken slug", err, store.ErrAlreadyExists)
	_, err = s.UpdateOrg(ctx, acme.ID, func(o *store.Org) error { o.ParentID = p2.ID; return nil })
	wantErr(t, "UpdateOrg moving parent", err, store.ErrInvalid)
	_, err = s.UpdateOrg(ctx, acme.ID, func(o *store.Org) error { o.Slug = "bad slug"; return nil })
	wantErr(t, "UpdateOrg to a bad slug", err, store.ErrInvalid)
	got, err = s.GetOrg(ctx, acme.ID)
	must(t, "GetOrg", err)
	if got.Slug != "acme-corp" || got.Name != "Acme" || got.ParentID != p1.ID {
		t.Errorf("failed updates changed the org: %+v", got)
	}
	if got, err := s.GetOrgBySlug(ctx, "beta"); err != nil || got.ParentID != p2.ID {
		t.Errorf("a failed rename disturbed the taken slug: %+v, %v", got, err)
	}
	_, err = s.UpdateOrg(ctx, "missing", func(*store.Org) error { return nil })
	wantErr(t, "UpdateOrg(missing)", err, store.ErrNotFound)
}

func testConnections(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, c := newStore(t, newBackend)
	p1, p2 := mkParent(t, s, "One"), mkParent(t, s, "Two")
	saml := &store.Connection{ParentID: p1.ID, Type: store.ConnSAML, Name: "Okta", IDPMetadataURL: "https://idp.example/md"}
	oidc := &store.Connection{ParentID: p1.ID, Type: store.ConnOIDC, Name: "Entra", Issuer: "https://login.example/v2.0",
		ClientID: "cid", ClientSecret: "s3cret"}
	must(t, "CreateConnection", s.CreateConnection(ctx, saml))
	c.Advance(time.Second) // lists are oldest first
	must(t, "CreateConnection", s.CreateConnection(ctx, oidc))
	must(t, "CreateConnection", s.CreateConnection(ctx, &store.Connection{ParentID: p2.ID, Type: store.ConnOIDC, Name: "Other"}))
	if saml.ID == "" || saml.CreatedAt.IsZero() {
		t.Errorf("CreateConnection did not fill ID and CreatedAt: %+v", saml)
	}
	wantErr(t, "CreateConnection under a missing parent",
		s.CreateConnection(ctx, &store.Connection{ParentID: "missing", Type: store.ConnSAML}), store.ErrNotFound)
	wantErr(t, "CreateConnection of unknown type",
		s.CreateConnection(ctx, &store.Connection{ParentID: p1.ID, Type: "ldap"}), store.ErrInvalid)
	wantErr(t, "CreateConnection with a taken ID",
		s.CreateConnection(ctx, &store.Connection{ID: saml.ID, ParentID: p1.ID, Type: store.ConnSAML}), store.ErrAlreadyExists)

	got, err := s.GetConnection(ctx, oidc.ID)
	must(t, "GetConnection", err)
	if got.ClientSecret != "s3cret" || got.Issuer != oidc.Issuer || got.ParentID != p1.ID || got.Type != store.ConnOIDC {
		t.Errorf("GetConnection = %+v; the store must keep the client secret", got)
	}
	list, err := s.ListConnections(ctx, p1.ID)
	must(t, "ListConnections", err)
	if len(list) != 2 || list[0].ID != saml.ID || list[1].ID != oidc.ID || list[1].ClientSecret != "s3cret" {
		t.Errorf("ListConnections = %+v", list)
	}

	at := time.Now().UTC().Truncate(time.Second)
	upd, err := s.UpdateConnection(ctx, saml.ID, func(c *store.Connection) error {
		c.TestedAt = at
		c.DefaultOrgID = "org-1"
		return nil
	})
	must(t, "UpdateConnection", err)
	if !upd.TestedAt.Equal(at) || upd.DefaultOrgID != "org-1" {
		t.Errorf("UpdateConnection returned %+v", upd)
	}
	_, err = s.UpdateConnection(ctx, saml.ID, func(c *store.Connection) error { c.ParentID = p2.ID; return nil })
	wantErr(t, "UpdateConnection moving parent", err, store.ErrInvalid)
	if got, _ := s.GetConnection(ctx, saml.ID); got == nil || !got.TestedAt.Equal(at) || got.ParentID != p1.ID {
		t.Errorf("GetConnection after updates = %+v", got)
	}
	_, err = s.UpdateConnection(ctx, "missing", func(*store.Connection) error { return nil })
	wantErr(t, "UpdateConnection(missing)", err, store.ErrNotFound)

	must(t, "DeleteConnection", s.DeleteConnection(ctx, saml.ID))
	_, err = s.GetConnection(ctx, saml.ID)
	wantErr(t, "GetConnection after delete", err, store.ErrNotFound)
	wantErr(t, "DeleteConnection twice", s.DeleteConnection(ctx, saml.ID), store.ErrNotFound)
	if list, _ := s.ListConnections(ctx, p1.ID); len(list) != 1 || list[0].ID != oidc.ID {
		t.Errorf("ListConnections after delete = %+v", list)
	}
}

package saml

import (
	"slices"
	"testing"

	crewsaml "github.com/crewjam/saml"

	"github.com/ssogate/ssogate/connector"
	"github.com/ssogate/ssogate/store"
)

func attr(name, friendly string, values ...string) crewsaml.Attribute {
	a := crewsaml.Attribute{Name: name, FriendlyName: friendly}
	for _, v := range values {
		a.Values = append(a.Values, crewsaml.AttributeValue{Value: v})
	}
	return a
}

func assertion(format, nameID string, attrs ...crewsaml.Attribute) *crewsaml.Assertion {
	return &crewsaml.Assertion{
		Issuer:              crewsaml.Issuer{Value: "https://idp.example/"},
		Subject:             &crewsaml.Subject{NameID: &crewsaml.NameID{Format: format, Value: nameID}},
		AttributeStatements: []crewsaml.AttributeStatement{{Attributes: attrs}},
	}
}

const (
	fmtEmail      = string(crewsaml.EmailAddressNameIDFormat)
	fmtPersistent = string(crewsaml.PersistentNameIDFormat)
	msEmail       = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	msGroups      = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
)

func TestIdentityMapping(t *testing.T) {
	for _, tc := range []struct {
		name   string
		conn   store.Connection
		a      *crewsaml.Assertion
		reason string // refusal, or "" for success
		check  func(t *testing.T, id *connector.Identity)
	}{
		{name: "email NameID", a: assertion(fmtEmail, "a@x.com", attr("mail", "", "other@x.com")),
			check: func(t *testing.T, id *connector.Identity) {
				if id.Email != "a@x.com" || id.Subject != "a@x.com" || id.Issuer != "https://idp.example/" || !id.EmailVerified {
					t.Fatalf("%+v", id)
				}
			}},
		{name: "Entra claims", a: assertion(fmtPersistent, "opaque-id",
			attr(msEmail, "", "b@x.com"),
			attr("http://schemas.microsoft.com/identity/claims/displayname", "", "Bea X"),
			attr("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "", "Bea"),
			attr("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", "", "X"),
			attr(msGroups, "", "g1", "g2"),
			attr("http://schemas.microsoft.com/identity/claims/tenantid", "", "t1")),
			check: func(t *testing.T, id *connector.Identity) {
				if id.Subject != "opaque-id" || id.Email != "b@x.com" || id.Name != "Bea X" || id.GivenName != "Bea" ||
					id.FamilyName != "X" || !slices.Equal(id.Groups, []string{"g1", "g2"}) || id.GroupsOverage {
					t.Fatalf("%+v", id)
				}
				if len(id.Attributes) != 1 || id.Attributes["http://schemas.microsoft.com/identity/claims/tenantid"] != "t1" {
					t.Fatalf("attributes = %v", id.Attributes)
				}
			}},
		{name: "friendly name, any case; repeated elements", a: assertion(fmtPersistent, "s",
			attr("urn:oid:x", "EMAIL", " c@x.com "), attr("memberOf", "", "a"), attr("memberOf", "", "b", "a")),
			check: func(t *testing.T, id *connector.Identity) {
				if id.Email != "c@x.com" || !slices.Equal(id.Groups, []string{"a", "b"}) {
					t.Fatalf("%+v", id)
				}
			}},
		{name: "configured email attribute is the only one read", conn: store.Connection{EmailAttribute: "upn"},
			a: assertion(fmtPersistent, "s", attr("email", "", "d@x.com")), reason: "no_email"},
		{name: "configured attributes", conn: store.Connection{EmailAttribute: "upn", GroupAttribute: "roles"},
			a: assertion(fmtPersistent, "s", attr("UPN", "", "e@x.com"), attr("roles", "", "r"), attr("groups", "", "g")),
			check: func(t *testing.T, id *connector.Identity) {
				if id.Email != "e@x.com" || !slices.Equal(id.Groups, []string{"r"}) || id.Attributes["groups"] != "g" {
					t.Fatalf("%+v", id)
				}
			}},
		{name: "groups overage", a: assertion(fmtEmail, "f@x.com",
			attr("http://schemas.microsoft.com/claims/groups.link", "", "https://graph.microsoft.com/...")),
			check: func(t *testing.T, id *connector.Identity) {
				if !id.GroupsOverage || id.Groups != nil {
					t.Fatalf("%+v", id)
				}
			}},
		{name: "no email", a: assertion(fmtPersistent, "s", attr("name", "", "G")), reason: "no_email"},
		{name: "blank email attribute", a: assertion(fmtPersistent, "s", attr("email", "", "  ")), reason: "no_email"},
		{name: "transient NameID", a: assertion(string(crewsaml.TransientNameIDFormat), "random", attr("email", "", "h@x.com")),
			reason: "transient_subject"},
		{name: "no NameID", a: &crewsaml.Assertion{Subject: &crewsaml.Subject{}}, reason: "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Connector{conn: tc.conn}
			id, err := c.identity(tc.a)
			if tc.reason != "" {
				wantRefusal(t, id, err, tc.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, id)
		})
	}
}

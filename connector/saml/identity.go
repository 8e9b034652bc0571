package saml

import (
	"errors"
	"strings"

	crewsaml "github.com/crewjam/saml"

	"github.com/ssogate/ssogate/connector"
)

// Attribute names tried, in order, when the connection names none. Names
// match an attribute's Name or FriendlyName, ignoring case.
var (
	emailAttributes = []string{"email", "mail", "emailaddress",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
		"urn:oid:0.9.2342.19200300.100.1.3", "user.email"}
	nameAttributes = []string{"name", "displayName",
		"http://schemas.microsoft.com/identity/claims/displayname"}
	givenNameAttributes = []string{"givenName", "firstName",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"}
	familyNameAttributes = []string{"sn", "surname", "lastName",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"}
	groupAttributes = []string{"groups",
		"http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", "memberOf", "Group"}
)

// groupsOverageAttribute is what Entra ID sends instead of the groups when
// the user is in too many.
const groupsOverageAttribute = "http://schemas.microsoft.com/claims/groups.link"

// identity turns a verified assertion into who signed in.
func (c *Connector) identity(a *crewsaml.Assertion) (*connector.Identity, error) {
	if a.Subject == nil || a.Subject.NameID == nil || strings.TrimSpace(a.Subject.NameID.Value) == "" {
		return nil, connector.Refuse("malformed", errors.New("assertion has no NameID"))
	}
	nameID := a.Subject.NameID
	// A transient NameID changes at every sign-in, so it cannot key an
	// account; the IdP must send a persistent, email or unspecified one.
	if nameID.Format == string(crewsaml.TransientNameIDFormat) {
		return nil, connector.Refuse("transient_subject", errors.New("the IdP sent a transient NameID"))
	}
	attrs := collectAttributes(a)
	used := map[int]bool{}

	id := &connector.Identity{
		Issuer:        a.Issuer.Value,
		Subject:       nameID.Value,
		EmailVerified: true, // the IdP asserts the address it vouches for
	}
	switch {
	case nameID.Format == string(crewsaml.EmailAddressNameIDFormat):
		id.Email = strings.TrimSpace(nameID.Value)
	case c.conn.EmailAttribute != "":
		id.Email = first(attrs.values(used, c.conn.EmailAttribute))
	default:
		id.Email = first(attrs.values(used, emailAttributes...))
	}
	if id.Email == "" {
		return nil, connector.Refuse("no_email", errors.New("assertion has no email (NameID format or attribute)"))
	}
	id.Name = first(attrs.values(used, nameAttributes...))
	id.GivenName = first(attrs.values(used, givenNameAttributes...))
	id.FamilyName = first(attrs.values(used, familyNameAttributes...))
	if c.conn.GroupAttribute != "" {
		id.Groups, _ = attrs.values(used, c.conn.GroupAttribute)
	} else {
		id.Groups, _ = attrs.values(used, groupAttributes...)
	}
	_, id.GroupsOverage = attrs.values(used, groupsOverageAttribute)

	for i, at := range attrs {
		key := at.Name
		if key == "" {
			key = at.FriendlyName
		}
		if key == "" || used[i] || len(at.values) == 0 {
			continue
		}
		if id.Attributes == nil {
			id.Attributes = map[string]string{}
		}
		if _, seen := id.Attributes[key]; !seen {
			id.Attributes[key] = at.values[0]
		}
	}
	return id, nil
}

type attribute struct {
	Name, FriendlyName string
	values             []string // trimmed, non-empty
}

type attributeList []attribute

func collectAttributes(a *crewsaml.Assertion) attributeList {
	var list attributeList
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			var vals []string
			for _, v := range at.Values {
				if s := strings.TrimSpace(v.Value); s != "" {
					vals = append(vals, s)
				}
			}
			list = append(list, attribute{Name: at.Name, FriendlyName: at.FriendlyName, values: vals})
		}
	}
	return list
}

func (at attribute) is(name string) bool {
	return strings.EqualFold(at.Name, name) || strings.EqualFold(at.FriendlyName, name)
}

// values returns the values of the first name present, gathered across
// repeated Attribute elements of that name (some IdPs send one value per
// element) without duplicates, and marks the attributes it read as used.
// found tells a present attribute without values from an absent one.
func (l attributeList) values(used map[int]bool, names ...string) (vals []string, found bool) {
	for _, name := range names {
		seen := map[string]bool{}
		for i, at := range l {
			if !at.is(name) {
				continue
			}
			found = true
			used[i] = true
			for _, v := range at.values {
				if !seen[v] {
					seen[v] = true
					vals = append(vals, v)
				}
			}
		}
		if found {
			return vals, true
		}
	}
	return nil, false
}

func first(vals []string, _ bool) string {
	if len(vals) == 0 {
		return ""
	}
	return vals[0]
}

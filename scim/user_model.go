package scim

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
	"unicode"

	elscim "github.com/elimity-com/scim"
	"github.com/elimity-com/scim/optional"

	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/store"
)

// SCIM attributes kept in store.User.Attributes, by key. A PUT replaces
// exactly these; keys other features put there are left alone.
var (
	userSimpleAttrs = []string{"nickName", "profileUrl", "title", "userType", "preferredLanguage", "locale", "timezone"}
	userNameAttrs   = []string{"formatted", "middleName", "honorificPrefix", "honorificSuffix"} // as "name.<sub>"
	enterpriseAttrs = []string{"employeeNumber", "costCenter", "organization", "division", "department"}
)

const (
	attrEmailType      = "emailType"
	attrManager        = "manager"
	attrManagerDisplay = "managerDisplayName"
	maxIDLen           = 256  // userName, externalId, displayName of a group
	maxValueLen        = 1024 // any other string attribute
)

func scimAttrKeys() []string {
	keys := append([]string{attrEmailType, attrManager, attrManagerDisplay}, userSimpleAttrs...)
	keys = append(keys, enterpriseAttrs...)
	for _, n := range userNameAttrs {
		keys = append(keys, "name."+n)
	}
	return keys
}

// scimUser is one org member as SCIM sees it.
type scimUser struct {
	u      *store.User
	m      *store.Membership
	groups []store.Group
}

// userName is the member's SCIM userName; members that SCIM did not
// provision (invited, JIT) show their email.
func (su *scimUser) userName() string {
	if su.m.SCIMUserName != "" {
		return su.m.SCIMUserName
	}
	return su.u.Email
}

// attributes renders the user as SCIM attributes (without id, externalId
// and meta, which the library adds from the Resource).
func (su *scimUser) attributes() map[string]any {
	u := su.u
	a := map[string]any{"userName": su.userName(), "active": su.m.Status != store.MemberInactive}
	name := map[string]any{}
	if u.GivenName != "" {
		name["givenName"] = u.GivenName
	}
	if u.FamilyName != "" {
		name["familyName"] = u.FamilyName
	}
	for _, n := range userNameAttrs {
		if v := u.Attributes["name."+n]; v != "" {
			name[n] = v
		}
	}
	if len(name) > 0 {
		a["name"] = name
	}
	if u.Name != "" {
		a["displayName"] = u.Name
	}
	for _, k := range userSimpleAttrs {
		if v := u.Attributes[k]; v != "" {
			a[k] = v
		}
	}
	etype := u.Attributes[attrEmailType]
	if etype == "" {
		etype = "work"
	}
	a["emails"] = []any{map[string]any{"value": u.Email, "type": etype, "primary": true}}
	ent := map[string]any{}
	for _, k := range enterpriseAttrs {
		if v := u.Attributes[k]; v != "" {
			ent[k] = v
		}
	}
	if v := u.Attributes[attrManager]; v != "" {
		mgr := map[string]any{"value": v}
		if d := u.Attributes[attrManagerDisplay]; d != "" {
			mgr["displayName"] = d
		}
		ent["manager"] = mgr
	}
	if len(ent) > 0 {
		a[uriEnterprise] = ent
	}
	if len(su.groups) > 0 {
		gs := make([]any, 0, len(su.groups))
		for _, g := range su.groups {
			gs = append(gs, map[string]any{"value": g.ID, "display": g.DisplayName, "type": "direct"})
		}
		a["groups"] = gs
	}
	return a
}

func (su *scimUser) resource() elscim.Resource {
	created := su.u.CreatedAt
	res := elscim.Resource{ID: su.u.ID, Attributes: su.attributes(), Meta: elscim.Meta{Created: &created, LastModified: &created}}
	if su.m.SCIMExternalID != "" {
		res.ExternalID = optional.NewString(su.m.SCIMExternalID)
	}
	return res
}

// patchMap is the map PATCH operations apply to: the attributes plus
// externalId.
func (su *scimUser) patchMap() map[string]any {
	a := su.attributes()
	if su.m.SCIMExternalID != "" {
		a["externalId"] = su.m.SCIMExternalID
	}
	return a
}

// filterMap is the map filters run on: everything, with extension
// attributes also under their qualified names (as the library looks them up).
func (su *scimUser) filterMap() map[string]any {
	a := su.patchMap()
	a["id"] = su.u.ID
	created := su.u.CreatedAt.UTC().Format(time.RFC3339)
	a["meta"] = map[string]any{"resourceType": "User", "created": created, "lastModified": created}
	if ent, ok := a[uriEnterprise].(map[string]any); ok {
		for k, v := range ent {
			a[uriEnterprise+":"+k] = v
		}
	}
	return a
}

// userInput is a validated User body (POST, PUT, or a patched resource).
type userInput struct {
	userName      string
	externalID    string
	hasExternalID bool
	email, domain string
	givenName     string
	familyName    string
	displayName   string
	active        *bool
	attrs         map[string]string // every SCIM-owned key; "" clears it
}

func str(v any) string {
	s, _ := v.(string)
	return strings.TrimSpace(s)
}

// badText reports control or invisible format characters.
func badText(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return true
		}
	}
	return false
}

func checkText(attr, v string, limit int) error {
	if len(v) > limit {
		return errInvalidValue(fmt.Sprintf("%s is longer than %d bytes.", attr, limit))
	}
	if badText(v) {
		return errInvalidValue(fmt.Sprintf("%s contains control or invisible characters.", attr))
	}
	return nil
}

// parseUser validates a User body. The account email is the primary (else
// work, else first) of emails, or else userName; a userName with an @ must
// itself be a valid email address.
func parseUser(a map[string]any) (*userInput, error) {
	in := &userInput{userName: str(a["userName"]), attrs: map[string]string{}}
	for _, k := range scimAttrKeys() {
		in.attrs[k] = ""
	}
	if in.userName == "" {
		return nil, errInvalidValue("userName is required.")
	}
	if err := checkText("userName", in.userName, maxIDLen); err != nil {
		return nil, err
	}
	if ext, ok := a["externalId"]; ok && ext != nil {
		in.externalID, in.hasExternalID = str(ext), true
		if err := checkText("externalId", in.externalID, maxIDLen); err != nil {
			return nil, err
		}
	}
	var userNameEmail string
	if strings.Contains(in.userName, "@") {
		e, _, err := policy.NormalizeEmail(in.userName)
		if err != nil {
			return nil, errInvalidValue(fmt.Sprintf("userName %q is not a valid email address: %v.", in.userName, err))
		}
		userNameEmail = e
	}
	raw, etype := pickEmail(a["emails"])
	if raw == "" {
		raw = userNameEmail
	}
	if raw == "" {
		return nil, errInvalidValue("The user has no email address: set userName to an email address or add emails.")
	}
	email, domain, err := policy.NormalizeEmail(raw)
	if err != nil {
		return nil, errInvalidValue(fmt.Sprintf("%q is not a valid email address: %v.", raw, err))
	}
	in.email, in.domain = email, domain
	if etype != "" && etype != "work" {
		in.attrs[attrEmailType] = etype
	}
	name, _ := a["name"].(map[string]any)
	in.givenName, in.familyName = str(name["givenName"]), str(name["familyName"])
	for _, n := range userNameAttrs {
		in.attrs["name."+n] = str(name[n])
	}
	in.displayName = str(a["displayName"])
	for _, k := range userSimpleAttrs {
		in.attrs[k] = str(a[k])
	}
	ent, _ := a[uriEnterprise].(map[string]any)
	for _, k := range enterpriseAttrs {
		in.attrs[k] = str(ent[k])
	}
	if mgr, ok := ent["manager"].(map[string]any); ok {
		in.attrs[attrManager], in.attrs[attrManagerDisplay] = str(mgr["value"]), str(mgr["displayName"])
	}
	for k, v := range in.attrs {
		if err := checkText(k, v, maxValueLen); err != nil {
			return nil, err
		}
	}
	for attr, v := range map[string]string{"name.givenName": in.givenName, "name.familyName": in.familyName, "displayName": in.displayName} {
		if err := checkText(attr, v, maxValueLen); err != nil {
			return nil, err
		}
	}
	switch v := a["active"].(type) {
	case nil:
	case bool:
		in.active = &v
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return nil, errInvalidValue("active must be true or false.")
		}
		in.active = &b
	default:
		return nil, errInvalidValue("active must be true or false.")
	}
	return in, nil
}

// pickEmail returns the primary email of an emails value, else the work
// one, else the first, with its type.
func pickEmail(v any) (value, typ string) {
	list, _ := v.([]any)
	best := -1
	rank := func(m map[string]any) int {
		switch {
		case m["primary"] == true:
			return 3
		case strings.EqualFold(str(m["type"]), "work"):
			return 2
		}
		return 1
	}
	var chosen map[string]any
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok || str(m["value"]) == "" {
			continue
		}
		if r := rank(m); r > best {
			best, chosen = r, m
		}
	}
	if chosen == nil {
		return "", ""
	}
	return str(chosen["value"]), strings.ToLower(str(chosen["type"]))
}

// fullName is the user's display name: displayName, else name.formatted,
// else given and family names.
func (in *userInput) fullName() string {
	if in.displayName != "" {
		return in.displayName
	}
	if f := in.attrs["name.formatted"]; f != "" {
		return f
	}
	return strings.TrimSpace(in.givenName + " " + in.familyName)
}

// applyProfile writes the input's names and attributes to u (not the email).
func (in *userInput) applyProfile(u *store.User) {
	u.GivenName, u.FamilyName, u.Name = in.givenName, in.familyName, in.fullName()
	attrs := maps.Clone(u.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	for k, v := range in.attrs {
		if v == "" {
			delete(attrs, k)
		} else {
			attrs[k] = v
		}
	}
	if len(attrs) == 0 {
		attrs = nil
	}
	u.Attributes = attrs
}

// profileDiffers reports whether applying in would change u's profile.
func (in *userInput) profileDiffers(u *store.User) bool {
	x := *u
	in.applyProfile(&x)
	return x.GivenName != u.GivenName || x.FamilyName != u.FamilyName || x.Name != u.Name ||
		!maps.Equal(x.Attributes, u.Attributes)
}

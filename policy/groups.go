package policy

import (
	"regexp"
	"strings"

	"github.com/ssogate/ssogate/store"
)

// Mappable roles, in the order group names list them.
var mappableRoles = []store.Role{store.RoleMember, store.RoleAdmin, store.RoleOwner}

var slugRe = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidSlug reports whether s can be an org slug.
func ValidSlug(s string) bool { return slugRe.MatchString(s) }

// GroupNames are the IdP groups to create for an org when Advanced Group
// Mappings is on: <prefix><slug>-member, -admin, -owner.
func GroupNames(prefix, slug string) []string {
	out := make([]string, len(mappableRoles))
	for i, r := range mappableRoles {
		out[i] = prefix + slug + "-" + string(r)
	}
	return out
}

// ParseGroup reads "<prefix><org-slug>-<role>". The role is parsed from
// the end, so slugs may hold hyphens; prefix and role match in any case.
// Names without the prefix, with an unknown role or an invalid slug are
// not mappings.
func ParseGroup(name, prefix string) (slug string, role store.Role, ok bool) {
	name = strings.TrimSpace(name)
	if prefix == "" || len(name) <= len(prefix) || !strings.EqualFold(name[:len(prefix)], prefix) {
		return "", "", false
	}
	rest := name[len(prefix):]
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return "", "", false
	}
	slug, r := strings.ToLower(rest[:i]), store.Role(strings.ToLower(rest[i+1:]))
	switch r {
	case store.RoleMember, store.RoleAdmin, store.RoleOwner:
	default:
		return "", "", false
	}
	if !ValidSlug(slug) {
		return "", "", false
	}
	return slug, r, true
}

// MappedRoles resolves a person's groups into the highest role per org
// slug. Groups that are not mappings are ignored.
func MappedRoles(groups []string, prefix string) map[string]store.Role {
	out := map[string]store.Role{}
	for _, g := range groups {
		slug, r, ok := ParseGroup(g, prefix)
		if ok && store.RoleRank(r) > store.RoleRank(out[slug]) {
			out[slug] = r
		}
	}
	return out
}

// MappingAction is what group mappings do to one membership.
type MappingAction string

// Mapping outcomes.
const (
	MapKeep   MappingAction = "keep"   // nothing changes
	MapGrant  MappingAction = "grant"  // a new membership with Role
	MapChange MappingAction = "change" // the role becomes Role
	MapRemove MappingAction = "remove" // the membership ends
)

// MappingDecision is the outcome for one person in one org.
type MappingDecision struct {
	Action MappingAction
	Role   store.Role
}

// DecideMapping applies an org's group mappings to one person: current is
// their role there ("" if none), mapped the role their groups grant (""
// if none). With the toggle on, membership and role come only from the
// groups; the primary owner is never demoted or removed by a mapping.
// With the toggle off, nothing changes.
func DecideMapping(toggleOn bool, current, mapped store.Role) MappingDecision {
	switch {
	case !toggleOn || current == store.RolePrimaryOwner:
		return MappingDecision{Action: MapKeep, Role: current}
	case current == "" && mapped == "":
		return MappingDecision{Action: MapKeep}
	case current == "":
		return MappingDecision{Action: MapGrant, Role: mapped}
	case mapped == "":
		return MappingDecision{Action: MapRemove}
	case mapped != current:
		return MappingDecision{Action: MapChange, Role: mapped}
	}
	return MappingDecision{Action: MapKeep, Role: current}
}

// LockoutRisk reports whether turning mappings on would leave the org
// with nobody who can administer it: after is each member's role once the
// decisions apply ("" when removed).
func LockoutRisk(after []store.Role) bool {
	for _, r := range after {
		if CanAdminister(r) {
			return false
		}
	}
	return true
}

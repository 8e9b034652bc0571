package policy

import "github.com/ssogate/ssogate/store"

// Action is something an org member may try to do to another member.
type Action string

// Member-management actions.
const (
	ActInvite     Action = "invite"      // add a member with a role
	ActRemove     Action = "remove"      // "Remove from team"
	ActChangeRole Action = "change_role" // change a member's role
)

// MayManage decides whether an actor with role actor may apply action to a
// member whose role is target (for invites: the role being granted), and
// for role changes to newRole. The rules:
//   - the primary owner can never be removed or demoted, and the role
//     cannot be granted (it changes only by transfer);
//   - owners and the primary owner manage admins and members, and owners;
//   - admins manage members only;
//   - members manage nobody.
func MayManage(actor store.Role, action Action, target, newRole store.Role) bool {
	if store.RoleRank(actor) == 0 || store.RoleRank(target) == 0 {
		return false
	}
	if target == store.RolePrimaryOwner || (action == ActChangeRole && newRole == store.RolePrimaryOwner) {
		return false
	}
	if action == ActChangeRole && store.RoleRank(newRole) == 0 {
		return false
	}
	switch actor {
	case store.RolePrimaryOwner, store.RoleOwner:
		return true
	case store.RoleAdmin:
		if target != store.RoleMember {
			return false
		}
		return action != ActChangeRole || newRole == store.RoleMember
	}
	return false
}

// CanAdminister reports whether a role may use the admin console and API
// for its parent org (domains, SSO, SCIM, mappings).
func CanAdminister(r store.Role) bool {
	return r == store.RoleOwner || r == store.RolePrimaryOwner
}

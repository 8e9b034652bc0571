package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	elscim "github.com/elimity-com/scim"
	"go.uber.org/zap"

	"github.com/ssogate/ssogate/store"
)

// userHandler serves /Users. A user is visible to a token when it is a
// member of the token's org; its resource id is the store user ID.
type userHandler struct{ h *handler }

var _ elscim.ResourceSearcher = (*userHandler)(nil)

// validResourceID screens path IDs before they reach the store.
func validResourceID(id string) bool {
	return id != "" && len(id) <= 200 && !strings.ContainsAny(id, "/ \t\r\n")
}

func (uh *userHandler) load(ctx context.Context, t *tenant, id string, withGroups bool) (*scimUser, error) {
	h := uh.h
	if !validResourceID(id) {
		return nil, errNotFound("User")
	}
	m, err := h.st.GetMembership(ctx, t.orgID, id)
	if err != nil {
		return nil, h.storeErr(t, "reading membership", err, "User", "")
	}
	u, err := h.st.GetUser(ctx, id)
	if err != nil {
		return nil, h.storeErr(t, "reading user", err, "User", "")
	}
	su := &scimUser{u: u, m: m}
	if withGroups {
		if su.groups, err = h.st.GroupsOfUser(ctx, t.orgID, id); err != nil {
			return nil, h.internal(t, "reading groups of user", err)
		}
	}
	return su, nil
}

// Get implements elscim.ResourceHandler.
func (uh *userHandler) Get(r *http.Request, id string) (elscim.Resource, error) {
	su, err := uh.load(r.Context(), tenantOf(r), id, true)
	if err != nil {
		return elscim.Resource{}, err
	}
	return su.resource(), nil
}

// Create implements elscim.ResourceHandler: it creates the user, or adopts
// the existing account with that email, and makes it a member of the org.
func (uh *userHandler) Create(r *http.Request, attrs elscim.ResourceAttributes) (elscim.Resource, error) {
	h, ctx, t := uh.h, r.Context(), tenantOf(r)
	in, err := parseUser(attrs)
	if err != nil {
		return elscim.Resource{}, err
	}
	if err := h.checkDomain(ctx, t, in.email, in.domain); err != nil {
		return elscim.Resource{}, err
	}
	if err := h.checkSCIMKeys(ctx, t, "", in.userName, in.externalID); err != nil {
		return elscim.Resource{}, err
	}
	existing, err := h.st.GetUserByEmail(ctx, in.email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return elscim.Resource{}, h.internal(t, "reading user by email", err)
	}
	var old *store.Membership
	owns := true
	if existing != nil {
		old, err = h.st.GetMembership(ctx, t.orgID, existing.ID)
		switch {
		case err == nil && old.SCIMUserName != "":
			return elscim.Resource{}, errUniqueness(fmt.Sprintf(
				"%s is already provisioned in this organization with userName %q.", in.email, old.SCIMUserName))
		case errors.Is(err, store.ErrNotFound):
			old = nil
		case err != nil:
			return elscim.Resource{}, h.internal(t, "reading membership", err)
		}
		if owns, err = h.ownsAccount(ctx, t, existing); err != nil {
			return elscim.Resource{}, err
		}
	}
	status := newMemberStatus(t, old, in.active)

	// The user first, the membership last: a failed membership write
	// undoes the user write, so no request leaves half a change.
	var user *store.User
	var before *store.User
	switch {
	case existing == nil:
		user = &store.User{Email: in.email, CreatedBy: "scim"}
		in.applyProfile(user)
		if err := h.st.CreateUser(ctx, user); err != nil {
			return elscim.Resource{}, h.storeErr(t, "creating user", err, "", "The email address is used by another account.")
		}
	case owns && in.profileDiffers(existing):
		before = existing
		if user, err = h.st.UpdateUser(ctx, existing.ID, func(x *store.User) error { in.applyProfile(x); return nil }); err != nil {
			return elscim.Resource{}, h.storeErr(t, "updating adopted user", err, "User", "")
		}
	default:
		user = existing
	}
	m := &store.Membership{OrgID: t.orgID, UserID: user.ID, Role: store.RoleMember, Status: status, Source: "scim",
		SCIMUserName: in.userName, SCIMExternalID: in.externalID}
	if old != nil {
		m.Role, m.Source, m.CreatedAt = old.Role, old.Source, old.CreatedAt
	}
	if err := h.st.PutMembership(ctx, m); err != nil {
		if existing == nil {
			if _, derr := h.st.DeleteUser(ctx, user.ID); derr != nil {
				h.log.Error("scim: undoing user creation", zap.String("user_id", user.ID), zap.Error(derr))
			}
		} else if before != nil {
			h.restoreUser(ctx, t, before)
		}
		return elscim.Resource{}, h.storeErr(t, "writing membership", err, "",
			"userName or externalId is already used in this organization.")
	}
	if existing != nil && status == store.MemberInactive {
		if err := h.revoke(ctx, user.ID); err != nil {
			return elscim.Resource{}, err
		}
	} else if existing != nil {
		h.refresh(ctx, user.ID)
	}
	if status == store.MemberUnmapped && existing != nil {
		// An adopted account may already sit in mapped groups.
		if err := h.groupsChanged(ctx, t, []string{user.ID}); err != nil {
			return elscim.Resource{}, err
		}
	}
	details := map[string]string{"user_id": user.ID, "userName": in.userName}
	if existing != nil {
		details["adopted"] = "true"
	}
	if status == store.MemberInactive {
		details["active"] = "false"
	}
	h.auditChange(ctx, t, "scim.user.create", user.Email, details)
	return uh.respond(ctx, t, user.ID)
}

// newMemberStatus is the status a SCIM write gives a membership: inactive
// when the IdP says so; else an existing member keeps its access state;
// else active, or unmapped in an org whose access comes from group
// mappings (the mappings then grant it).
func newMemberStatus(t *tenant, old *store.Membership, active *bool) store.MembershipStatus {
	switch {
	case active != nil && !*active:
		return store.MemberInactive
	case old != nil && (old.Status == store.MemberActive || old.Status == store.MemberUnmapped):
		return old.Status
	case t.groupMappings:
		return store.MemberUnmapped
	}
	return store.MemberActive
}

func (uh *userHandler) respond(ctx context.Context, t *tenant, id string) (elscim.Resource, error) {
	su, err := uh.load(ctx, t, id, true)
	if err != nil {
		return elscim.Resource{}, err
	}
	return su.resource(), nil
}

// Replace implements elscim.ResourceHandler (PUT). An absent externalId or
// active keeps the stored value; other absent attributes are cleared.
func (uh *userHandler) Replace(r *http.Request, id string, attrs elscim.ResourceAttributes) (elscim.Resource, error) {
	su, err := uh.load(r.Context(), tenantOf(r), id, false)
	if err != nil {
		return elscim.Resource{}, err
	}
	in, err := parseUser(attrs)
	if err != nil {
		return elscim.Resource{}, err
	}
	return uh.update(r, su, in, "scim.user.replace")
}

// Patch implements elscim.ResourceHandler.
func (uh *userHandler) Patch(r *http.Request, id string, ops []elscim.PatchOperation) (elscim.Resource, error) {
	su, err := uh.load(r.Context(), tenantOf(r), id, false)
	if err != nil {
		return elscim.Resource{}, err
	}
	res := su.patchMap()
	if err := uh.h.users.applyPatch(res, ops); err != nil {
		return elscim.Resource{}, err
	}
	in, err := parseUser(res)
	if err != nil {
		return elscim.Resource{}, err
	}
	in.hasExternalID = true // the patched resource is complete: no externalId means removed
	return uh.update(r, su, in, "scim.user.patch")
}

// update writes a validated replacement of su: user first, membership
// last (undoing the user write if the membership write fails), then ends
// the sessions of a deactivated user.
func (uh *userHandler) update(r *http.Request, su *scimUser, in *userInput, action string) (elscim.Resource, error) {
	h, ctx, t := uh.h, r.Context(), tenantOf(r)
	id := su.u.ID
	if !in.hasExternalID {
		in.externalID = su.m.SCIMExternalID
	}
	if err := h.checkSCIMKeys(ctx, t, id, in.userName, in.externalID); err != nil {
		return elscim.Resource{}, err
	}
	emailChanged := in.email != su.u.Email
	profileChanged := in.profileDiffers(su.u)
	if emailChanged || profileChanged {
		owns, err := h.ownsAccount(ctx, t, su.u)
		if err != nil {
			return elscim.Resource{}, err
		}
		if emailChanged && !owns {
			return elscim.Resource{}, errMutability("This account also belongs to another organization, " +
				"so its email can only be changed while it is on a domain your organization has verified.")
		}
		profileChanged = profileChanged && owns // others' accounts keep their profile
	}
	if emailChanged {
		if err := h.checkDomain(ctx, t, in.email, in.domain); err != nil {
			return elscim.Resource{}, err
		}
		if other, err := h.st.GetUserByEmail(ctx, in.email); err == nil && other.ID != id {
			return elscim.Resource{}, errUniqueness("The email address is used by another account.")
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return elscim.Resource{}, h.internal(t, "reading user by email", err)
		}
	}
	status := su.m.Status
	switch {
	case in.active == nil:
	case !*in.active:
		status = store.MemberInactive
	case status == store.MemberInactive:
		status = newMemberStatus(t, nil, nil) // active, or unmapped until a mapped group grants access
	}
	var changed []string
	if emailChanged {
		changed = append(changed, "email")
	}
	if profileChanged {
		changed = append(changed, "profile")
	}
	if in.userName != su.m.SCIMUserName {
		changed = append(changed, "userName")
	}
	if in.externalID != su.m.SCIMExternalID {
		changed = append(changed, "externalId")
	}
	if status != su.m.Status {
		changed = append(changed, "status")
	}
	userWritten := false
	if emailChanged || profileChanged {
		_, err := h.st.UpdateUser(ctx, id, func(x *store.User) error {
			if emailChanged {
				x.Email = in.email
			}
			if profileChanged {
				in.applyProfile(x)
			}
			return nil
		})
		if err != nil {
			return elscim.Resource{}, h.storeErr(t, "updating user", err, "User", "The email address is used by another account.")
		}
		userWritten = true
	}
	if status != su.m.Status || in.userName != su.m.SCIMUserName || in.externalID != su.m.SCIMExternalID {
		_, err := h.st.UpdateMembership(ctx, t.orgID, id, func(m *store.Membership) error {
			m.Status, m.SCIMUserName, m.SCIMExternalID = status, in.userName, in.externalID
			return nil
		})
		if err != nil {
			if userWritten {
				h.restoreUser(ctx, t, su.u)
			}
			return elscim.Resource{}, h.storeErr(t, "updating membership", err, "User",
				"userName or externalId is already used in this organization.")
		}
	}
	if status == store.MemberInactive {
		// Revoke on every write that leaves the user inactive, so a retry
		// after a failed revocation ends the sessions.
		if err := h.revoke(ctx, id); err != nil {
			return elscim.Resource{}, err
		}
	} else if len(changed) > 0 {
		h.refresh(ctx, id)
	}
	if status == store.MemberUnmapped && in.active != nil && *in.active {
		// Let group mappings grant access (again on a retry, should this fail).
		if err := h.groupsChanged(ctx, t, []string{id}); err != nil {
			return elscim.Resource{}, err
		}
	}
	if len(changed) > 0 {
		switch {
		case status == store.MemberInactive && su.m.Status != store.MemberInactive:
			action = "scim.user.deactivate"
		case status != store.MemberInactive && su.m.Status == store.MemberInactive:
			action = "scim.user.reactivate"
		}
		h.auditChange(ctx, t, action, in.email, map[string]string{"user_id": id, "changed": strings.Join(changed, ",")})
	}
	return uh.respond(ctx, t, id)
}

// Delete implements elscim.ResourceHandler: the user leaves the org (its
// account stays for its other orgs) and its sessions end.
func (uh *userHandler) Delete(r *http.Request, id string) error {
	h, ctx, t := uh.h, r.Context(), tenantOf(r)
	su, err := uh.load(ctx, t, id, true)
	if err != nil {
		return err
	}
	if err := h.st.DeleteMembership(ctx, t.orgID, id); err != nil {
		return h.storeErr(t, "deleting membership", err, "User", "")
	}
	if err := h.revoke(ctx, id); err != nil {
		return err
	}
	if len(su.groups) > 0 {
		if err := h.groupsChanged(ctx, t, []string{id}); err != nil {
			return err
		}
	}
	h.auditChange(ctx, t, "scim.user.delete", su.u.Email, map[string]string{"user_id": id, "userName": su.userName()})
	return nil
}

// GetAll implements elscim.ResourceHandler.
func (uh *userHandler) GetAll(r *http.Request, params elscim.ListRequestParams) (elscim.Page, error) {
	return uh.h.listUsers(r.Context(), tenantOf(r), params)
}

// Search implements elscim.ResourceSearcher (POST /Users/.search).
func (uh *userHandler) Search(r *http.Request, params elscim.SearchParams) (elscim.Page, error) {
	return uh.h.listUsers(r.Context(), tenantOf(r), elscim.ListRequestParams{
		Count: params.Count, StartIndex: params.StartIndex, FilterValidator: params.FilterValidator,
	})
}

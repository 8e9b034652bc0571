package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/store"
)

// MappingChange is one membership change made by group mappings.
type MappingChange struct {
	OrgID   string               `json:"org_id"`
	OrgSlug string               `json:"org"`
	UserID  string               `json:"user_id"`
	Email   string               `json:"email"`
	Action  policy.MappingAction `json:"action"`
	From    store.Role           `json:"from,omitempty"`
	To      store.Role           `json:"to,omitempty"`
	// Group is the IdP group that caused a grant or change.
	Group string `json:"group,omitempty"`
}

// UserGroups is every group the IdP says a user is in: the groups of the
// last SSO sign-in and the SCIM groups of every org of the parent org.
func UserGroups(ctx context.Context, st *store.Store, parentID string, u *store.User) ([]string, error) {
	groups := append([]string(nil), u.IdPGroups...)
	orgs, err := st.ListOrgs(ctx, parentID)
	if err != nil {
		return nil, err
	}
	for _, o := range orgs {
		gs, err := st.GroupsOfUser(ctx, o.ID, u.ID)
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			groups = append(groups, g.DisplayName)
		}
	}
	return groups, nil
}

// PlanMappings computes what group mappings would do to one user in every
// org of the parent org. onlyOrg, when set, limits it to one org and
// treats that org's toggle as on (the preview before turning it on).
func PlanMappings(ctx context.Context, st *store.Store, parentID string, u *store.User, prefix, onlyOrg string) ([]MappingChange, error) {
	groups, err := UserGroups(ctx, st, parentID, u)
	if err != nil {
		return nil, err
	}
	mapped := policy.MappedRoles(groups, prefix)
	orgs, err := st.ListOrgs(ctx, parentID)
	if err != nil {
		return nil, err
	}
	var out []MappingChange
	for _, o := range orgs {
		on := o.GroupMappings
		if onlyOrg != "" {
			if o.ID != onlyOrg {
				continue
			}
			on = true
		}
		current := store.Role("")
		m, err := st.GetMembership(ctx, o.ID, u.ID)
		switch {
		case err == nil && m.Status == store.MemberUnmapped:
			// provisioned, no access: a mapped group grants it
		case err == nil && m.Status != store.MemberInactive:
			current = m.Role
		case err == nil: // deactivated by SCIM: mappings do not revive it
			continue
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
		d := policy.DecideMapping(on, current, mapped[o.Slug])
		if d.Action == policy.MapKeep {
			continue
		}
		c := MappingChange{OrgID: o.ID, OrgSlug: o.Slug, UserID: u.ID, Email: u.Email, Action: d.Action, From: current, To: d.Role}
		if d.Role != "" {
			c.Group = prefix + o.Slug + "-" + string(d.Role)
			for _, g := range groups {
				if strings.EqualFold(strings.TrimSpace(g), c.Group) {
					c.Group = strings.TrimSpace(g)
				}
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// ApplyMappings makes the user's memberships match their mapped groups in
// every org that has mappings on, and returns what changed.
func ApplyMappings(ctx context.Context, st *store.Store, parentID string, u *store.User, prefix string) ([]MappingChange, error) {
	changes, err := PlanMappings(ctx, st, parentID, u, prefix, "")
	if err != nil {
		return nil, err
	}
	for _, c := range changes {
		if err := applyChange(ctx, st, c); err != nil {
			return nil, fmt.Errorf("provision: applying group mapping in %s: %w", c.OrgSlug, err)
		}
	}
	return changes, nil
}

func applyChange(ctx context.Context, st *store.Store, c MappingChange) error {
	switch c.Action {
	case policy.MapGrant:
		// A SCIM-provisioned member without access keeps its SCIM record.
		_, err := st.UpdateMembership(ctx, c.OrgID, c.UserID, func(m *store.Membership) error {
			m.Role, m.Status = c.To, store.MemberActive
			return nil
		})
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return st.PutMembership(ctx, &store.Membership{OrgID: c.OrgID, UserID: c.UserID, Role: c.To, Status: store.MemberActive,
			Source: "group", CreatedAt: st.Now().UTC()})
	case policy.MapChange:
		_, err := st.UpdateMembership(ctx, c.OrgID, c.UserID, func(m *store.Membership) error {
			m.Role, m.Status = c.To, store.MemberActive
			return nil
		})
		return err
	case policy.MapRemove:
		// The IdP still provisions a SCIM member: keep the resource, end
		// the access. Others lose the membership.
		m, err := st.GetMembership(ctx, c.OrgID, c.UserID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if m.SCIMUserName != "" || m.SCIMExternalID != "" {
			_, err = st.UpdateMembership(ctx, c.OrgID, c.UserID, func(x *store.Membership) error {
				x.Status = store.MemberUnmapped
				return nil
			})
			return err
		}
		err = st.DeleteMembership(ctx, c.OrgID, c.UserID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
	return nil
}

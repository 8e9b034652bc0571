// Package provision turns an identity asserted by an IdP into a user and
// memberships: just-in-time provisioning at SSO sign-in, with the
// cross-tenant rule that an IdP only vouches for its own verified domains.
package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ssogate/ssogate/connector"
	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/store"
)

// Refusal reasons (audit codes).
const (
	ReasonBadEmail        = "bad_email"
	ReasonOutsideOrg      = "profile_not_allowed_outside_organization"
	ReasonAccountConflict = "account_conflict"
	ReasonDeactivated     = "deactivated"
)

// SSO finds or creates the user an SSO identity belongs to, links the
// IdP account (issuer, subject) to it, refreshes the profile, and makes
// sure the user is an active member of the connection's default org.
// Every refusal is a *connector.Error with one of the reasons above. In
// orgs with Advanced Group Mappings on, membership and role come from the
// asserted groups instead; the changes made are returned for audit.
func SSO(ctx context.Context, st *store.Store, conn *store.Connection, id *connector.Identity, groupPrefix string) (*store.User, []MappingChange, error) {
	email, domain, err := policy.NormalizeEmail(id.Email)
	if err != nil {
		return nil, nil, connector.Refuse(ReasonBadEmail, fmt.Errorf("asserted email %q: %w", id.Email, err))
	}
	owner, captured, err := st.CaptureLookup(ctx, domain)
	if err != nil {
		return nil, nil, err
	}
	if !policy.SSOIdentityAllowed(conn.ParentID, policy.Capture{Captured: captured, ParentID: owner}) {
		return nil, nil, connector.Refuse(ReasonOutsideOrg, fmt.Errorf("%s is not a domain verified by parent org %s", domain, conn.ParentID))
	}
	// The account key is scoped to the connection's parent org: a SAML
	// issuer is only what the tenant's own metadata says, so another
	// tenant could copy it. An IdP account linked through one parent org
	// is never found through another's connection.
	scoped := *id
	scoped.Issuer = ScopedIssuer(conn.ParentID, id.Issuer)
	u, err := Account(ctx, st, &scoped, email, "jit")
	if err != nil {
		return nil, nil, err
	}
	now := st.Now().UTC()
	groups := prefixed(id.Groups, groupPrefix)
	u, err = st.UpdateUser(ctx, u.ID, func(x *store.User) error {
		x.Email = email
		if id.Name != "" {
			x.Name = id.Name
		} else if n := strings.TrimSpace(id.GivenName + " " + id.FamilyName); n != "" {
			x.Name = n
		}
		if id.GivenName != "" {
			x.GivenName = id.GivenName
		}
		if id.FamilyName != "" {
			x.FamilyName = id.FamilyName
		}
		x.IdPGroups = groups
		x.LastLoginAt = now
		return nil
	})
	if errors.Is(err, store.ErrAlreadyExists) {
		return nil, nil, connector.Refuse(ReasonAccountConflict, fmt.Errorf("the IdP renamed its account to %s, which another account uses", email))
	}
	if err != nil {
		return nil, nil, err
	}
	if def, err := st.GetOrg(ctx, conn.DefaultOrgID); err == nil && !def.GroupMappings {
		if err := ensureMember(ctx, st, conn.DefaultOrgID, u.ID); err != nil {
			return nil, nil, err
		}
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, nil, err
	}
	changes, err := ApplyMappings(ctx, st, conn.ParentID, u, groupPrefix)
	if err != nil {
		return nil, nil, err
	}
	return u, changes, nil
}

// ScopedIssuer is the issuer under which SSO identities are linked: the
// parent org that owns the connection, then the IdP's issuer.
func ScopedIssuer(parentID, issuer string) string { return "parent:" + parentID + "|" + issuer }

// Account returns the user linked to the IdP account (issuer, subject),
// or links the user with that email, or creates one (createdBy: "jit",
// "social"). It refuses when the email's account is already linked to
// another subject at the same issuer (an address re-assigned at the IdP).
// Callers decide first whether this IdP may vouch for the email at all.
func Account(ctx context.Context, st *store.Store, id *connector.Identity, email, createdBy string) (*store.User, error) {
	u, err := st.UserByIdentity(ctx, id.Issuer, id.Subject)
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	u, err = st.GetUserByEmail(ctx, email)
	switch {
	case errors.Is(err, store.ErrNotFound):
		u = &store.User{Email: email, Name: id.Name, GivenName: id.GivenName, FamilyName: id.FamilyName, CreatedBy: createdBy}
		if err := st.CreateUser(ctx, u); errors.Is(err, store.ErrAlreadyExists) {
			// Another sign-in created it a moment ago.
			if u, err = st.GetUserByEmail(ctx, email); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		// An existing account: refuse if this IdP already knows it under
		// another subject (the IdP reassigned the email to someone else).
		ids, err := st.ListIdentities(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		for _, x := range ids {
			if x.Issuer == id.Issuer && x.Subject != id.Subject {
				return nil, connector.Refuse(ReasonAccountConflict, fmt.Errorf("%s is linked to another subject at %s", email, id.Issuer))
			}
		}
	}
	err = st.LinkIdentity(ctx, store.Identity{Issuer: id.Issuer, Subject: id.Subject, UserID: u.ID})
	if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		return nil, err
	}
	return u, nil
}

// ensureMember makes the user an active member of org (role member when
// new). A membership the IdP deactivated over SCIM is not revived by a
// sign-in.
func ensureMember(ctx context.Context, st *store.Store, orgID, userID string) error {
	if orgID == "" {
		return nil
	}
	m, err := st.GetMembership(ctx, orgID, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = st.PutMembership(ctx, &store.Membership{OrgID: orgID, UserID: userID, Role: store.RoleMember,
			Status: store.MemberActive, Source: "jit", CreatedAt: st.Now().UTC()})
		if errors.Is(err, store.ErrAlreadyExists) {
			return nil
		}
		return err
	case err != nil:
		return err
	case m.Status == store.MemberInactive:
		return connector.Refuse(ReasonDeactivated, fmt.Errorf("membership of %s in %s is deactivated", userID, orgID))
	case m.Status == store.MemberInvited:
		_, err = st.UpdateMembership(ctx, orgID, userID, func(x *store.Membership) error {
			x.Status = store.MemberActive
			return nil
		})
		return err
	}
	return nil
}

// prefixed keeps the groups that start with prefix (case-insensitive),
// de-duplicated, in order.
func prefixed(groups []string, prefix string) []string {
	var out []string
	seen := map[string]bool{}
	for _, g := range groups {
		g = strings.TrimSpace(g)
		k := strings.ToLower(g)
		if prefix != "" && !strings.HasPrefix(k, strings.ToLower(prefix)) || seen[k] || g == "" {
			continue
		}
		seen[k] = true
		out = append(out, g)
	}
	return out
}

package scim

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/ssogate/ssogate/store"
)

// checkDomain refuses an email whose domain the tenant's parent org has not
// verified, unless the parent org lets SCIM provision unverified domains. A
// domain another parent org has verified is refused either way: a verified
// domain belongs to exactly one parent org.
func (h *handler) checkDomain(ctx context.Context, t *tenant, email, domain string) error {
	owner, captured, err := h.st.CaptureLookup(ctx, domain)
	if err != nil {
		return h.internal(t, "capture lookup", err)
	}
	if captured && owner == t.parentID {
		return nil
	}
	var detail, reason string
	if captured {
		reason = "domain_verified_by_another_organization"
		detail = fmt.Sprintf("%s is verified by another organization, so users on it cannot be provisioned here.", domain)
	} else {
		p, err := h.st.GetParentOrg(ctx, t.parentID)
		if err != nil {
			return h.internal(t, "reading parent org", err)
		}
		if p.AllowUnverifiedSCIMDomains {
			return nil
		}
		reason = "domain_not_verified"
		detail = fmt.Sprintf("%s is not a domain your organization has verified. Verify the domain first, "+
			"or allow provisioning users on unverified domains over SCIM.", domain)
	}
	h.audit(ctx, &store.AuditEvent{
		ParentID: t.parentID, OrgID: t.orgID, Actor: t.actor, Action: "scim.user.refused", Target: email,
		Outcome: "failure", Reason: reason, RemoteIP: t.remoteIP,
	})
	return errInvalidValue(detail)
}

// ownsAccount reports whether the tenant may change an account's profile:
// its email is on a domain the tenant's parent org verified, or it belongs
// to no org of another parent org.
func (h *handler) ownsAccount(ctx context.Context, t *tenant, u *store.User) (bool, error) {
	_, domain, _ := strings.Cut(u.Email, "@")
	owner, captured, err := h.st.CaptureLookup(ctx, domain)
	if err != nil {
		return false, h.internal(t, "capture lookup", err)
	}
	if captured && owner == t.parentID {
		return true, nil
	}
	ms, err := h.st.ListUserMemberships(ctx, u.ID)
	if err != nil {
		return false, h.internal(t, "listing memberships", err)
	}
	for _, m := range ms {
		if m.OrgID == t.orgID {
			continue
		}
		o, err := h.st.GetOrg(ctx, m.OrgID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, h.internal(t, "reading org", err)
		}
		if o.ParentID != t.parentID {
			return false, nil
		}
	}
	return true, nil
}

// checkSCIMKeys answers 409 when userName or externalId belongs to another
// member of the org than userID ("" for a new member).
func (h *handler) checkSCIMKeys(ctx context.Context, t *tenant, userID, userName, externalID string) error {
	m, err := h.st.MembershipBySCIMUserName(ctx, t.orgID, userName)
	switch {
	case err == nil && m.UserID != userID:
		return errUniqueness(fmt.Sprintf("userName %q is already used in this organization.", userName))
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return h.internal(t, "looking up userName", err)
	}
	if externalID == "" {
		return nil
	}
	m, err = h.st.MembershipBySCIMExternalID(ctx, t.orgID, externalID)
	switch {
	case err == nil && m.UserID != userID:
		return errUniqueness(fmt.Sprintf("externalId %q is already used in this organization.", externalID))
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return h.internal(t, "looking up externalId", err)
	}
	return nil
}

// restoreUser undoes a user write after a later write of the same request
// failed.
func (h *handler) restoreUser(ctx context.Context, t *tenant, before *store.User) {
	_, err := h.st.UpdateUser(ctx, before.ID, func(x *store.User) error {
		x.Email, x.Name, x.GivenName, x.FamilyName, x.Attributes = before.Email, before.Name, before.GivenName, before.FamilyName, before.Attributes
		return nil
	})
	if err != nil {
		h.log.Error("scim: undoing user update", zap.String("org_id", t.orgID), zap.String("user_id", before.ID), zap.Error(err))
	}
}

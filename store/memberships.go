package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Membership key layout.
const (
	kMember       = "member/"         // + orgID/userID -> Membership
	kOrgMembers   = "idx/orgmembers/" // + orgID -> user ids
	kUserOrgs     = "idx/userorgs/"   // + userID -> org ids
	kSCIMUserName = "scimuser/"       // + orgID/kp(lower(userName)) -> user id (unique per org)
	kSCIMExtID    = "scimext/"        // + orgID/kp(externalId) -> user id (unique per org)
)

func memberKey(orgID, userID string) string { return kMember + orgID + "/" + userID }

// scimUserNameKey is "" when the membership has no SCIM userName. userName
// is unique per org case-insensitively (RFC 7643 §4.1.1).
func scimUserNameKey(orgID, userName string) string {
	if userName == "" {
		return ""
	}
	return kSCIMUserName + orgID + "/" + kp(strings.ToLower(userName))
}

// scimExtIDKey is "" when the membership has no SCIM externalId
// (externalId is case-exact).
func scimExtIDKey(orgID, ext string) string {
	if ext == "" {
		return ""
	}
	return kSCIMExtID + orgID + "/" + kp(ext)
}

func validMembership(m *Membership) error {
	if RoleRank(m.Role) == 0 {
		return invalidf("unknown role %q", m.Role)
	}
	switch m.Status {
	case MemberActive, MemberInvited, MemberInactive, MemberUnmapped:
	default:
		return invalidf("unknown membership status %q", m.Status)
	}
	return nil
}

// moveSCIMKeys moves a membership's unique SCIM keys from old (nil for a new
// membership) to cur; a userName or externalId held by another member of the
// org is ErrAlreadyExists.
func moveSCIMKeys(tx Txn, old, cur *Membership) error {
	var oldName, oldExt string
	if old != nil {
		oldName, oldExt = scimUserNameKey(old.OrgID, old.SCIMUserName), scimExtIDKey(old.OrgID, old.SCIMExternalID)
	}
	if err := moveRef(tx, oldName, scimUserNameKey(cur.OrgID, cur.SCIMUserName), cur.UserID); err != nil {
		if errors.Is(err, ErrAlreadyExists) {
			return fmt.Errorf("SCIM userName %q is taken in this org: %w", cur.SCIMUserName, err)
		}
		return err
	}
	if err := moveRef(tx, oldExt, scimExtIDKey(cur.OrgID, cur.SCIMExternalID), cur.UserID); err != nil {
		if errors.Is(err, ErrAlreadyExists) {
			return fmt.Errorf("SCIM externalId %q is taken in this org: %w", cur.SCIMExternalID, err)
		}
		return err
	}
	return nil
}

// PutMembership creates or replaces a user's membership of an org (both
// must exist). An empty Status means active; a zero CreatedAt keeps the
// replaced membership's or takes now. On success *m holds what was stored.
func (s *Store) PutMembership(ctx context.Context, m *Membership) error {
	if m.Status == "" {
		m.Status = MemberActive
	}
	if err := validMembership(m); err != nil {
		return fmt.Errorf("store: put membership: %w", err)
	}
	now := s.Now().UTC()
	var stored Membership
	err := s.b.Update(ctx, func(tx Txn) error {
		rec := *m
		if err := mustExist(tx, kOrg+rec.OrgID, "org", rec.OrgID); err != nil {
			return err
		}
		if err := mustExist(tx, kUser+rec.UserID, "user", rec.UserID); err != nil {
			return err
		}
		var old *Membership
		var prev Membership
		if err := getJSON(tx, memberKey(rec.OrgID, rec.UserID), &prev); err == nil {
			old = &prev
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if rec.CreatedAt.IsZero() {
			rec.CreatedAt = now
			if old != nil {
				rec.CreatedAt = old.CreatedAt
			}
		}
		if err := moveSCIMKeys(tx, old, &rec); err != nil {
			return err
		}
		if err := putJSON(tx, memberKey(rec.OrgID, rec.UserID), &rec, 0); err != nil {
			return err
		}
		if err := tx.IndexAdd(kOrgMembers+rec.OrgID, rec.UserID); err != nil {
			return err
		}
		stored = rec
		return tx.IndexAdd(kUserOrgs+rec.UserID, rec.OrgID)
	})
	if err != nil {
		return fmt.Errorf("store: put membership of %s in org %s: %w", m.UserID, m.OrgID, err)
	}
	*m = stored
	return nil
}

// GetMembership reads a user's membership of an org.
func (s *Store) GetMembership(ctx context.Context, orgID, userID string) (*Membership, error) {
	var m Membership
	if err := s.b.View(ctx, func(tx Reader) error { return getJSON(tx, memberKey(orgID, userID), &m) }); err != nil {
		return nil, fmt.Errorf("store: get membership of %s in org %s: %w", userID, orgID, err)
	}
	return &m, nil
}

// UpdateMembership reads, changes and writes a membership in one
// transaction; SCIM userName and externalId changes move their unique keys.
func (s *Store) UpdateMembership(ctx context.Context, orgID, userID string, fn func(*Membership) error) (*Membership, error) {
	var out *Membership
	err := s.b.Update(ctx, func(tx Txn) error {
		old, cur, err := getTwice[Membership](tx, memberKey(orgID, userID))
		if err != nil {
			return err
		}
		if err := fn(cur); err != nil {
			return err
		}
		if cur.OrgID != old.OrgID || cur.UserID != old.UserID {
			return invalidf("the org and user of a membership cannot change")
		}
		if err := validMembership(cur); err != nil {
			return err
		}
		if err := moveSCIMKeys(tx, old, cur); err != nil {
			return err
		}
		out = cur
		return putJSON(tx, memberKey(orgID, userID), cur, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("store: update membership of %s in org %s: %w", userID, orgID, err)
	}
	return out, nil
}

// DeleteMembership removes a user from an org, with its SCIM keys and its
// seats in the org's groups (ErrNotFound if it was not a member).
func (s *Store) DeleteMembership(ctx context.Context, orgID, userID string) error {
	now := s.Now().UTC()
	err := s.b.Update(ctx, func(tx Txn) error { return deleteMembership(tx, orgID, userID, now) })
	if err != nil {
		return fmt.Errorf("store: delete membership of %s in org %s: %w", userID, orgID, err)
	}
	return nil
}

func deleteMembership(tx Txn, orgID, userID string, now time.Time) error {
	var m Membership
	if err := getJSON(tx, memberKey(orgID, userID), &m); err != nil {
		return err
	}
	if err := releaseRef(tx, scimUserNameKey(orgID, m.SCIMUserName), userID); err != nil {
		return err
	}
	if err := releaseRef(tx, scimExtIDKey(orgID, m.SCIMExternalID), userID); err != nil {
		return err
	}
	if err := removeUserFromGroups(tx, orgID, userID, now); err != nil {
		return err
	}
	if err := tx.Delete(memberKey(orgID, userID)); err != nil {
		return err
	}
	if err := tx.IndexRemove(kOrgMembers+orgID, userID); err != nil {
		return err
	}
	return tx.IndexRemove(kUserOrgs+userID, orgID)
}

// ListOrgMembers lists an org's memberships, ordered by user ID.
func (s *Store) ListOrgMembers(ctx context.Context, orgID string) ([]Membership, error) {
	return s.ListOrgMembersPage(ctx, orgID, "", 0)
}

// ListOrgMembersPage lists up to limit memberships of an org whose user ID
// sorts after afterUserID (limit <= 0: all), for paging through big orgs.
func (s *Store) ListOrgMembersPage(ctx context.Context, orgID, afterUserID string, limit int) ([]Membership, error) {
	var out []Membership
	err := s.b.View(ctx, func(tx Reader) error {
		users, err := tx.IndexRange(kOrgMembers+orgID, afterUserID, limit)
		if err != nil {
			return err
		}
		out = make([]Membership, 0, len(users))
		for _, u := range users {
			var m Membership
			if err := getJSON(tx, memberKey(orgID, u), &m); err != nil {
				if errors.Is(err, ErrNotFound) {
					continue
				}
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list members of org %s: %w", orgID, err)
	}
	return out, nil
}

// ListUserMemberships lists a user's memberships, ordered by org ID.
func (s *Store) ListUserMemberships(ctx context.Context, userID string) ([]Membership, error) {
	var out []Membership
	err := s.b.View(ctx, func(tx Reader) (err error) {
		out, err = listIndexed[Membership](tx, kUserOrgs+userID, func(orgID string) string { return memberKey(orgID, userID) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list memberships of %s: %w", userID, err)
	}
	return out, nil
}

// MembershipBySCIMUserName finds an org's member by SCIM userName
// (case-insensitive): one index lookup, no scan.
func (s *Store) MembershipBySCIMUserName(ctx context.Context, orgID, userName string) (*Membership, error) {
	m, err := s.membershipByRef(ctx, orgID, scimUserNameKey(orgID, userName))
	if err != nil {
		return nil, fmt.Errorf("store: membership by SCIM userName %q in org %s: %w", userName, orgID, err)
	}
	return m, nil
}

// MembershipBySCIMExternalID finds an org's member by SCIM externalId.
func (s *Store) MembershipBySCIMExternalID(ctx context.Context, orgID, externalID string) (*Membership, error) {
	m, err := s.membershipByRef(ctx, orgID, scimExtIDKey(orgID, externalID))
	if err != nil {
		return nil, fmt.Errorf("store: membership by SCIM externalId %q in org %s: %w", externalID, orgID, err)
	}
	return m, nil
}

func (s *Store) membershipByRef(ctx context.Context, orgID, refKey string) (*Membership, error) {
	if refKey == "" {
		return nil, ErrNotFound
	}
	var m Membership
	err := s.b.View(ctx, func(tx Reader) error {
		userID, err := getRef(tx, refKey)
		if err != nil {
			return err
		}
		return getJSON(tx, memberKey(orgID, userID), &m)
	})
	if err != nil {
		return nil, err
	}
	return &m, nil
}

package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Group key layout. Every key carries the org, so a group of another org
// is simply not found.
const (
	kGroup      = "group/"          // + orgID/id -> Group
	kGroupName  = "groupname/"      // + orgID/kp(lower(displayName)) -> group id (unique per org)
	kGroupExt   = "groupext/"       // + orgID/kp(externalId) -> group id (unique per org)
	kOrgGroups  = "idx/orggroups/"  // + orgID -> group ids
	kUserGroups = "idx/usergroups/" // + orgID/userID -> group ids
)

func groupKey(orgID, id string) string { return kGroup + orgID + "/" + id }

func groupNameKey(orgID, name string) string {
	return kGroupName + orgID + "/" + kp(strings.ToLower(strings.TrimSpace(name)))
}

func groupExtKey(orgID, ext string) string {
	if ext == "" {
		return ""
	}
	return kGroupExt + orgID + "/" + kp(ext)
}

func userGroupsIndex(orgID, userID string) string { return kUserGroups + orgID + "/" + userID }

// dedupe drops repeated and empty member IDs, keeping first-seen order.
func dedupe(ids []string) []string {
	out := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// syncGroupSeats updates the user->groups index for the members that
// joined or left a group. A joining user must be a member of the org.
func syncGroupSeats(tx Txn, orgID, groupID string, before, after []string) error {
	was := make(map[string]bool, len(before))
	for _, u := range before {
		was[u] = true
	}
	is := make(map[string]bool, len(after))
	for _, u := range after {
		is[u] = true
		if was[u] {
			continue
		}
		if err := mustExist(tx, memberKey(orgID, u), "member", u); err != nil {
			return err
		}
		if err := tx.IndexAdd(userGroupsIndex(orgID, u), groupID); err != nil {
			return err
		}
	}
	for _, u := range before {
		if !is[u] {
			if err := tx.IndexRemove(userGroupsIndex(orgID, u), groupID); err != nil {
				return err
			}
		}
	}
	return nil
}

// moveGroupKeys moves a group's unique displayName and externalId keys from
// old (nil for a new group) to cur.
func moveGroupKeys(tx Txn, old, cur *Group) error {
	var oldName, oldExt string
	if old != nil {
		oldName, oldExt = groupNameKey(old.OrgID, old.DisplayName), groupExtKey(old.OrgID, old.ExternalID)
	}
	if err := moveRef(tx, oldName, groupNameKey(cur.OrgID, cur.DisplayName), cur.ID); err != nil {
		if errors.Is(err, ErrAlreadyExists) {
			return fmt.Errorf("group name %q is taken in this org: %w", cur.DisplayName, err)
		}
		return err
	}
	if err := moveRef(tx, oldExt, groupExtKey(cur.OrgID, cur.ExternalID), cur.ID); err != nil {
		if errors.Is(err, ErrAlreadyExists) {
			return fmt.Errorf("group externalId %q is taken in this org: %w", cur.ExternalID, err)
		}
		return err
	}
	return nil
}

// CreateGroup stores a new group of an org. displayName is unique per org,
// case-insensitively, and so is a non-empty externalId (ErrAlreadyExists).
// Every member must be a member of the org.
func (s *Store) CreateGroup(ctx context.Context, g *Group) error {
	g.DisplayName = strings.TrimSpace(g.DisplayName)
	if g.DisplayName == "" {
		return fmt.Errorf("store: create group: %w", invalidf("displayName is required"))
	}
	if g.ID == "" {
		g.ID = newSortableID(s.Now())
	}
	if !validID(g.ID) {
		return fmt.Errorf("store: create group: %w", invalidf("bad id %q", g.ID))
	}
	now := s.Now().UTC()
	if g.CreatedAt.IsZero() {
		g.CreatedAt = now
	}
	if g.UpdatedAt.IsZero() {
		g.UpdatedAt = g.CreatedAt
	}
	g.Members = dedupe(g.Members)
	rec := *g
	err := s.b.Update(ctx, func(tx Txn) error {
		if err := mustExist(tx, kOrg+rec.OrgID, "org", rec.OrgID); err != nil {
			return err
		}
		if err := moveGroupKeys(tx, nil, &rec); err != nil {
			return err
		}
		if err := create(tx, groupKey(rec.OrgID, rec.ID), &rec, 0); err != nil {
			return err
		}
		if err := tx.IndexAdd(kOrgGroups+rec.OrgID, rec.ID); err != nil {
			return err
		}
		return syncGroupSeats(tx, rec.OrgID, rec.ID, nil, rec.Members)
	})
	if err != nil {
		return fmt.Errorf("store: create group %q in org %s: %w", g.DisplayName, g.OrgID, err)
	}
	return nil
}

// GetGroup reads one group of an org.
func (s *Store) GetGroup(ctx context.Context, orgID, id string) (*Group, error) {
	var g Group
	if err := s.b.View(ctx, func(tx Reader) error { return getJSON(tx, groupKey(orgID, id), &g) }); err != nil {
		return nil, fmt.Errorf("store: get group %s in org %s: %w", id, orgID, err)
	}
	return &g, nil
}

// GroupByDisplayName finds an org's group by name (case-insensitive).
func (s *Store) GroupByDisplayName(ctx context.Context, orgID, name string) (*Group, error) {
	g, err := s.groupByRef(ctx, orgID, groupNameKey(orgID, name))
	if err != nil {
		return nil, fmt.Errorf("store: group by name %q in org %s: %w", name, orgID, err)
	}
	return g, nil
}

// GroupByExternalID finds an org's group by SCIM externalId.
func (s *Store) GroupByExternalID(ctx context.Context, orgID, ext string) (*Group, error) {
	g, err := s.groupByRef(ctx, orgID, groupExtKey(orgID, ext))
	if err != nil {
		return nil, fmt.Errorf("store: group by externalId %q in org %s: %w", ext, orgID, err)
	}
	return g, nil
}

func (s *Store) groupByRef(ctx context.Context, orgID, refKey string) (*Group, error) {
	if refKey == "" {
		return nil, ErrNotFound
	}
	var g Group
	err := s.b.View(ctx, func(tx Reader) error {
		id, err := getRef(tx, refKey)
		if err != nil {
			return err
		}
		return getJSON(tx, groupKey(orgID, id), &g)
	})
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// ListGroups lists an org's groups, oldest first.
func (s *Store) ListGroups(ctx context.Context, orgID string) ([]Group, error) {
	var out []Group
	err := s.b.View(ctx, func(tx Reader) (err error) {
		out, err = listIndexed[Group](tx, kOrgGroups+orgID, func(id string) string { return groupKey(orgID, id) })
		sortByCreated(out, func(g *Group) (time.Time, string) { return g.CreatedAt, g.ID })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list groups of org %s: %w", orgID, err)
	}
	return out, nil
}

// GroupsOfUser lists the groups of an org that a user sits in.
func (s *Store) GroupsOfUser(ctx context.Context, orgID, userID string) ([]Group, error) {
	var out []Group
	err := s.b.View(ctx, func(tx Reader) (err error) {
		out, err = listIndexed[Group](tx, userGroupsIndex(orgID, userID), func(id string) string { return groupKey(orgID, id) })
		sortByCreated(out, func(g *Group) (time.Time, string) { return g.CreatedAt, g.ID })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: groups of %s in org %s: %w", userID, orgID, err)
	}
	return out, nil
}

// UpdateGroup reads, changes and writes a group in one transaction. A
// rename moves the unique name key; member changes update the user->groups
// index. UpdatedAt is set to now.
func (s *Store) UpdateGroup(ctx context.Context, orgID, id string, fn func(*Group) error) (*Group, error) {
	now := s.Now().UTC()
	var out *Group
	err := s.b.Update(ctx, func(tx Txn) error {
		old, cur, err := getTwice[Group](tx, groupKey(orgID, id))
		if err != nil {
			return err
		}
		if err := fn(cur); err != nil {
			return err
		}
		cur.DisplayName = strings.TrimSpace(cur.DisplayName)
		cur.Members = dedupe(cur.Members)
		switch {
		case cur.ID != old.ID || cur.OrgID != old.OrgID:
			return invalidf("the id and org of a group cannot change")
		case cur.DisplayName == "":
			return invalidf("displayName is required")
		}
		if err := moveGroupKeys(tx, old, cur); err != nil {
			return err
		}
		if err := syncGroupSeats(tx, orgID, id, old.Members, cur.Members); err != nil {
			return err
		}
		cur.UpdatedAt = now
		out = cur
		return putJSON(tx, groupKey(orgID, id), cur, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("store: update group %s in org %s: %w", id, orgID, err)
	}
	return out, nil
}

// DeleteGroup removes a group with its unique keys and seats.
func (s *Store) DeleteGroup(ctx context.Context, orgID, id string) error {
	err := s.b.Update(ctx, func(tx Txn) error {
		var g Group
		if err := getJSON(tx, groupKey(orgID, id), &g); err != nil {
			return err
		}
		if err := releaseRef(tx, groupNameKey(orgID, g.DisplayName), id); err != nil {
			return err
		}
		if err := releaseRef(tx, groupExtKey(orgID, g.ExternalID), id); err != nil {
			return err
		}
		if err := syncGroupSeats(tx, orgID, id, g.Members, nil); err != nil {
			return err
		}
		if err := tx.Delete(groupKey(orgID, id)); err != nil {
			return err
		}
		return tx.IndexRemove(kOrgGroups+orgID, id)
	})
	if err != nil {
		return fmt.Errorf("store: delete group %s in org %s: %w", id, orgID, err)
	}
	return nil
}

// removeUserFromGroups takes a leaving member out of every group of the org.
func removeUserFromGroups(tx Txn, orgID, userID string, now time.Time) error {
	ids, err := tx.IndexRange(userGroupsIndex(orgID, userID), "", 0)
	if err != nil {
		return err
	}
	for _, id := range ids {
		var g Group
		err := getJSON(tx, groupKey(orgID, id), &g)
		if err == nil {
			g.Members = slices.DeleteFunc(g.Members, func(u string) bool { return u == userID })
			g.UpdatedAt = now
			err = putJSON(tx, groupKey(orgID, id), &g, 0)
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := tx.IndexRemove(userGroupsIndex(orgID, userID), id); err != nil {
			return err
		}
	}
	return nil
}

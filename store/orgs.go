package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CreateParentOrg stores a new parent org, assigning ID and CreatedAt when
// they are empty.
func (s *Store) CreateParentOrg(ctx context.Context, p *ParentOrg) error {
	if p.ID == "" {
		p.ID = newSortableID(s.Now())
	}
	if !validID(p.ID) {
		return fmt.Errorf("store: create parent org: %w", invalidf("bad id %q", p.ID))
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = s.Now().UTC()
	}
	rec := *p
	err := s.b.Update(ctx, func(tx Txn) error {
		if err := create(tx, kParent+rec.ID, &rec, 0); err != nil {
			return err
		}
		return tx.IndexAdd(kParents, rec.ID)
	})
	if err != nil {
		return fmt.Errorf("store: create parent org %s: %w", p.ID, err)
	}
	return nil
}

// GetParentOrg reads one parent org.
func (s *Store) GetParentOrg(ctx context.Context, id string) (*ParentOrg, error) {
	var p ParentOrg
	if err := s.b.View(ctx, func(tx Reader) error { return getJSON(tx, kParent+id, &p) }); err != nil {
		return nil, fmt.Errorf("store: get parent org %s: %w", id, err)
	}
	return &p, nil
}

// ListParentOrgs lists every parent org, oldest first.
func (s *Store) ListParentOrgs(ctx context.Context) ([]ParentOrg, error) {
	var out []ParentOrg
	err := s.b.View(ctx, func(tx Reader) (err error) {
		out, err = listIndexed[ParentOrg](tx, kParents, func(id string) string { return kParent + id })
		sortByCreated(out, func(p *ParentOrg) (time.Time, string) { return p.CreatedAt, p.ID })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list parent orgs: %w", err)
	}
	return out, nil
}

// UpdateParentOrg reads, changes and writes a parent org in one transaction.
// fn may run more than once and must only change the record it is given.
func (s *Store) UpdateParentOrg(ctx context.Context, id string, fn func(*ParentOrg) error) (*ParentOrg, error) {
	var out *ParentOrg
	err := s.b.Update(ctx, func(tx Txn) error {
		_, cur, err := getTwice[ParentOrg](tx, kParent+id)
		if err != nil {
			return err
		}
		if err := fn(cur); err != nil {
			return err
		}
		if cur.ID != id {
			return invalidf("the id of a parent org cannot change")
		}
		out = cur
		return putJSON(tx, kParent+id, cur, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("store: update parent org %s: %w", id, err)
	}
	return out, nil
}

// NormalizeSlug is the stored form of an org slug.
func NormalizeSlug(slug string) string { return strings.ToLower(strings.TrimSpace(slug)) }

// validSlug allows what fits in a URL path and in the X-Ssogate-Orgs header
// ("slug:role,..."): lower-case letters, digits, '-', '_' and '.'.
func validSlug(slug string) bool {
	if slug == "" || len(slug) > 63 {
		return false
	}
	for _, c := range slug {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// CreateOrg stores a new org under an existing parent org. The slug is
// stored lower-case and is globally unique (ErrAlreadyExists).
func (s *Store) CreateOrg(ctx context.Context, o *Org) error {
	o.Slug = NormalizeSlug(o.Slug)
	if !validSlug(o.Slug) {
		return fmt.Errorf("store: create org: %w", invalidf("bad slug %q (use a-z, 0-9, '-', '_', '.')", o.Slug))
	}
	if o.ID == "" {
		o.ID = newSortableID(s.Now())
	}
	if !validID(o.ID) {
		return fmt.Errorf("store: create org: %w", invalidf("bad id %q", o.ID))
	}
	if o.CreatedAt.IsZero() {
		o.CreatedAt = s.Now().UTC()
	}
	rec := *o
	err := s.b.Update(ctx, func(tx Txn) error {
		if err := mustExist(tx, kParent+rec.ParentID, "parent org", rec.ParentID); err != nil {
			return err
		}
		if err := claimRef(tx, kOrgSlug+kp(rec.Slug), rec.ID); err != nil {
			if errors.Is(err, ErrAlreadyExists) {
				return fmt.Errorf("slug %q is taken: %w", rec.Slug, err)
			}
			return err
		}
		if err := create(tx, kOrg+rec.ID, &rec, 0); err != nil {
			return err
		}
		if err := tx.IndexAdd(kOrgs, rec.ID); err != nil {
			return err
		}
		return tx.IndexAdd(kParentOrgs+rec.ParentID, rec.ID)
	})
	if err != nil {
		return fmt.Errorf("store: create org %s: %w", o.Slug, err)
	}
	return nil
}

// GetOrg reads one org.
func (s *Store) GetOrg(ctx context.Context, id string) (*Org, error) {
	var o Org
	if err := s.b.View(ctx, func(tx Reader) error { return getJSON(tx, kOrg+id, &o) }); err != nil {
		return nil, fmt.Errorf("store: get org %s: %w", id, err)
	}
	return &o, nil
}

// GetOrgBySlug finds an org by its slug (case-insensitive).
func (s *Store) GetOrgBySlug(ctx context.Context, slug string) (*Org, error) {
	var o Org
	err := s.b.View(ctx, func(tx Reader) error {
		id, err := getRef(tx, kOrgSlug+kp(NormalizeSlug(slug)))
		if err != nil {
			return err
		}
		return getJSON(tx, kOrg+id, &o)
	})
	if err != nil {
		return nil, fmt.Errorf("store: get org by slug %q: %w", slug, err)
	}
	return &o, nil
}

// ListOrgs lists the orgs of one parent org, oldest first. An empty parentID
// lists every org.
func (s *Store) ListOrgs(ctx context.Context, parentID string) ([]Org, error) {
	index := kOrgs
	if parentID != "" {
		index = kParentOrgs + parentID
	}
	var out []Org
	err := s.b.View(ctx, func(tx Reader) (err error) {
		out, err = listIndexed[Org](tx, index, func(id string) string { return kOrg + id })
		sortByCreated(out, func(o *Org) (time.Time, string) { return o.CreatedAt, o.ID })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list orgs of %q: %w", parentID, err)
	}
	return out, nil
}

// UpdateOrg reads, changes and writes an org in one transaction. A slug
// change moves the unique key (ErrAlreadyExists if taken). The parent
// cannot change here: orgs move between parent orgs only through ApplyMerge.
func (s *Store) UpdateOrg(ctx context.Context, id string, fn func(*Org) error) (*Org, error) {
	var out *Org
	err := s.b.Update(ctx, func(tx Txn) error {
		old, cur, err := getTwice[Org](tx, kOrg+id)
		if err != nil {
			return err
		}
		if err := fn(cur); err != nil {
			return err
		}
		cur.Slug = NormalizeSlug(cur.Slug)
		switch {
		case cur.ID != old.ID:
			return invalidf("the id of an org cannot change")
		case cur.ParentID != old.ParentID:
			return invalidf("an org changes parent org only through a merge")
		case !validSlug(cur.Slug):
			return invalidf("bad slug %q", cur.Slug)
		}
		if err := moveRef(tx, kOrgSlug+kp(old.Slug), kOrgSlug+kp(cur.Slug), id); err != nil {
			if errors.Is(err, ErrAlreadyExists) {
				return fmt.Errorf("slug %q is taken: %w", cur.Slug, err)
			}
			return err
		}
		out = cur
		return putJSON(tx, kOrg+id, cur, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("store: update org %s: %w", id, err)
	}
	return out, nil
}

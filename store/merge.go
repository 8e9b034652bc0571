package store

import (
	"context"
	"fmt"
	"time"
)

// Merge proposal key layout.
const (
	kMerge        = "merge/"            // + id -> MergeProposal
	kParentMerges = "idx/parentmerges/" // + parentID (either side) -> proposal ids
)

func mergeConflictf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMergeConflict}, args...)...)
}

// CreateMergeProposal stores a proposal that the incoming parent org's
// orgs join the surviving one. Both parent orgs must exist and differ, and
// every org in OrgIDs must belong to the incoming parent; an empty OrgIDs
// means all of its orgs. ID, CreatedAt and Status (proposed) are filled in
// when empty.
func (s *Store) CreateMergeProposal(ctx context.Context, p *MergeProposal) error {
	if p.SurvivingParent == "" || p.SurvivingParent == p.IncomingParent {
		return fmt.Errorf("store: create merge proposal: %w", invalidf("the surviving and incoming parent orgs must differ"))
	}
	if p.ID == "" {
		p.ID = newSortableID(s.Now())
	}
	if !validID(p.ID) {
		return fmt.Errorf("store: create merge proposal: %w", invalidf("bad id %q", p.ID))
	}
	if p.Status == "" {
		p.Status = MergeProposed
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = s.Now().UTC()
	}
	p.OrgIDs = dedupe(p.OrgIDs)
	var stored MergeProposal
	err := s.b.Update(ctx, func(tx Txn) error {
		rec := *p
		if err := mustExist(tx, kParent+rec.SurvivingParent, "surviving parent org", rec.SurvivingParent); err != nil {
			return err
		}
		if err := mustExist(tx, kParent+rec.IncomingParent, "incoming parent org", rec.IncomingParent); err != nil {
			return err
		}
		if len(rec.OrgIDs) == 0 {
			ids, err := tx.IndexRange(kParentOrgs+rec.IncomingParent, "", 0)
			if err != nil {
				return err
			}
			rec.OrgIDs = ids
		}
		for _, id := range rec.OrgIDs {
			var o Org
			if err := getJSON(tx, kOrg+id, &o); err != nil {
				return fmt.Errorf("org %q: %w", id, err)
			}
			if o.ParentID != rec.IncomingParent {
				return invalidf("org %s is not under the incoming parent org", o.Slug)
			}
		}
		if err := create(tx, kMerge+rec.ID, &rec, 0); err != nil {
			return err
		}
		if err := tx.IndexAdd(kParentMerges+rec.SurvivingParent, rec.ID); err != nil {
			return err
		}
		stored = rec
		return tx.IndexAdd(kParentMerges+rec.IncomingParent, rec.ID)
	})
	if err != nil {
		return fmt.Errorf("store: create merge proposal %s: %w", p.ID, err)
	}
	*p = stored
	return nil
}

// GetMergeProposal reads one proposal.
func (s *Store) GetMergeProposal(ctx context.Context, id string) (*MergeProposal, error) {
	var p MergeProposal
	if err := s.b.View(ctx, func(tx Reader) error { return getJSON(tx, kMerge+id, &p) }); err != nil {
		return nil, fmt.Errorf("store: get merge proposal %s: %w", id, err)
	}
	return &p, nil
}

// ListMergeProposals lists the proposals a parent org is on either side of,
// oldest first.
func (s *Store) ListMergeProposals(ctx context.Context, parentID string) ([]MergeProposal, error) {
	var out []MergeProposal
	err := s.b.View(ctx, func(tx Reader) (err error) {
		out, err = listIndexed[MergeProposal](tx, kParentMerges+parentID, func(id string) string { return kMerge + id })
		sortByCreated(out, func(p *MergeProposal) (time.Time, string) { return p.CreatedAt, p.ID })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list merge proposals of %s: %w", parentID, err)
	}
	return out, nil
}

// UpdateMergeProposal reads, changes and writes a proposal in one
// transaction (approvals, decline, withdraw, expiry). The parent orgs cannot
// change, an applied proposal cannot change at all, and only ApplyMerge
// marks a proposal applied.
func (s *Store) UpdateMergeProposal(ctx context.Context, id string, fn func(*MergeProposal) error) (*MergeProposal, error) {
	var out *MergeProposal
	err := s.b.Update(ctx, func(tx Txn) error {
		old, cur, err := getTwice[MergeProposal](tx, kMerge+id)
		if err != nil {
			return err
		}
		if old.Status == MergeApplied {
			return mergeConflictf("proposal %s is already applied", id)
		}
		if err := fn(cur); err != nil {
			return err
		}
		switch {
		case cur.ID != old.ID || cur.SurvivingParent != old.SurvivingParent || cur.IncomingParent != old.IncomingParent:
			return invalidf("the id and parent orgs of a merge proposal cannot change")
		case cur.Status == MergeApplied:
			return invalidf("a merge proposal is applied only by ApplyMerge")
		}
		cur.OrgIDs = dedupe(cur.OrgIDs)
		out = cur
		return putJSON(tx, kMerge+id, cur, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("store: update merge proposal %s: %w", id, err)
	}
	return out, nil
}

// mergePlan is what ApplyMerge will move, all read and checked before any write.
type mergePlan struct {
	orgs    []Org
	domains []Domain
	conns   []Connection
}

// ApplyMerge carries out an approved proposal in one transaction: the orgs
// in OrgIDs, the incoming parent org's verified domain claims (owner keys
// and records) and its connections all move to the surviving parent org,
// and the proposal becomes applied. Anything that stands in the way (state
// not proposed, a missing approval, expiry, an org no longer under the
// incoming parent, a domain the surviving parent already claims) is an
// ErrMergeConflict and nothing is written. A proposal applies once.
func (s *Store) ApplyMerge(ctx context.Context, id string, at time.Time) (*MergeProposal, error) {
	var out *MergeProposal
	err := s.b.Update(ctx, func(tx Txn) error {
		var p MergeProposal
		if err := getJSON(tx, kMerge+id, &p); err != nil {
			return err
		}
		plan, err := planMerge(tx, &p, at)
		if err != nil {
			return err
		}
		if err := applyMergePlan(tx, &p, plan); err != nil {
			return err
		}
		p.Status = MergeApplied
		p.DecidedAt = at
		out = &p
		return putJSON(tx, kMerge+id, &p, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("store: apply merge proposal %s: %w", id, err)
	}
	return out, nil
}

func planMerge(tx Reader, p *MergeProposal, at time.Time) (*mergePlan, error) {
	switch {
	case p.Status != MergeProposed:
		return nil, mergeConflictf("proposal is %s, not %s", p.Status, MergeProposed)
	case p.SurvivingApprove == "" || p.IncomingApprove == "":
		return nil, mergeConflictf("proposal is not approved by both parent orgs")
	case !p.ExpiresAt.IsZero() && !at.Before(p.ExpiresAt):
		return nil, mergeConflictf("proposal expired at %s", p.ExpiresAt.Format(time.RFC3339))
	}
	if err := mustExist(tx, kParent+p.SurvivingParent, "surviving parent org", p.SurvivingParent); err != nil {
		return nil, err
	}
	if err := mustExist(tx, kParent+p.IncomingParent, "incoming parent org", p.IncomingParent); err != nil {
		return nil, err
	}
	plan := &mergePlan{}
	for _, orgID := range p.OrgIDs {
		var o Org
		if err := getJSON(tx, kOrg+orgID, &o); err != nil {
			return nil, fmt.Errorf("org %q: %w", orgID, err)
		}
		if o.ParentID != p.IncomingParent {
			return nil, mergeConflictf("org %s is no longer under the incoming parent org", o.Slug)
		}
		plan.orgs = append(plan.orgs, o)
	}
	var err error
	if plan.domains, err = planMergeDomains(tx, p); err != nil {
		return nil, err
	}
	connIDs, err := tx.IndexRange(kParentConns+p.IncomingParent, "", 0)
	if err != nil {
		return nil, err
	}
	for _, cid := range connIDs {
		c, err := getConn(tx, cid)
		if err != nil {
			return nil, fmt.Errorf("connection %s: %w", cid, err)
		}
		plan.conns = append(plan.conns, *c)
	}
	return plan, nil
}

// planMergeDomains lists the incoming parent org's verified claims, all of
// which move; the surviving parent org may hold no claim on any of them.
func planMergeDomains(tx Reader, p *MergeProposal) ([]Domain, error) {
	names, err := tx.IndexRange(kParentDomains+p.IncomingParent, "", 0)
	if err != nil {
		return nil, err
	}
	var out []Domain
	for _, name := range names {
		d, err := getClaim(tx, p.IncomingParent, name)
		if err != nil {
			return nil, fmt.Errorf("domain claim %s: %w", name, err)
		}
		if d.Status != DomainVerified {
			continue
		}
		if ok, err := exists(tx, claimKey(p.SurvivingParent, name)); err != nil {
			return nil, err
		} else if ok {
			return nil, mergeConflictf("the surviving parent org already has a claim on %s", name)
		}
		if owner, err := getRef(tx, ownerKey(name)); err != nil || owner != p.IncomingParent {
			return nil, mergeConflictf("domain %s is not owned by the incoming parent org", name)
		}
		out = append(out, *d)
	}
	return out, nil
}

func applyMergePlan(tx Txn, p *MergeProposal, plan *mergePlan) error {
	to, from := p.SurvivingParent, p.IncomingParent
	for _, o := range plan.orgs {
		o.ParentID = to
		if err := putJSON(tx, kOrg+o.ID, &o, 0); err != nil {
			return err
		}
		if err := tx.IndexRemove(kParentOrgs+from, o.ID); err != nil {
			return err
		}
		if err := tx.IndexAdd(kParentOrgs+to, o.ID); err != nil {
			return err
		}
	}
	for _, d := range plan.domains {
		if err := deleteClaim(tx, from, d.Name); err != nil {
			return err
		}
		d.ParentID = to
		if err := putClaim(tx, &d); err != nil {
			return err
		}
		if err := tx.IndexAdd(kParentDomains+to, d.Name); err != nil {
			return err
		}
		if err := tx.IndexAdd(kDomainClaimants+kp(d.Name), to); err != nil {
			return err
		}
		if err := tx.Put(ownerKey(d.Name), []byte(to), 0); err != nil {
			return err
		}
	}
	for _, c := range plan.conns {
		c.ParentID = to
		if err := putConn(tx, &c); err != nil {
			return err
		}
		if err := tx.IndexRemove(kParentConns+from, c.ID); err != nil {
			return err
		}
		if err := tx.IndexAdd(kParentConns+to, c.ID); err != nil {
			return err
		}
	}
	return nil
}

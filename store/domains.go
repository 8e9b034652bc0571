package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Domain key layout. A claim is per (parent org, domain); the owner key is
// the single source of truth for "who verified this domain", so domain
// capture is one Get.
const (
	kDomainClaim     = "domain/"               // + parentID/kp(domain) -> domainRecord
	kDomainOwner     = "domainowner/"          // + kp(domain) -> parentID of the verified claim
	kParentDomains   = "idx/parentdomains/"    // + parentID -> domains
	kDomainClaimants = "idx/domainclaimants/"  // + kp(domain) -> parentIDs holding a claim
	kUnverified      = "idx/unverifieddomains" // parentID/domain of every pending or failed claim
)

func claimKey(parentID, domain string) string { return kDomainClaim + parentID + "/" + kp(domain) }
func ownerKey(domain string) string           { return kDomainOwner + kp(domain) }

// domainRecord is the stored form of a Domain: the model hides the token
// from JSON output, the store must keep it.
type domainRecord struct {
	Domain
	Token string `json:"token,omitempty"`
}

func getClaim(r Reader, parentID, domain string) (*Domain, error) {
	var rec domainRecord
	if err := getJSON(r, claimKey(parentID, domain), &rec); err != nil {
		return nil, err
	}
	d := rec.Domain
	d.Token = rec.Token
	return &d, nil
}

// putClaim writes a claim and keeps the unverified index in step with its status.
func putClaim(tx Txn, d *Domain) error {
	if err := putJSON(tx, claimKey(d.ParentID, d.Name), &domainRecord{Domain: *d, Token: d.Token}, 0); err != nil {
		return err
	}
	if d.Status == DomainVerified {
		return tx.IndexRemove(kUnverified, d.ParentID+"/"+d.Name)
	}
	return tx.IndexAdd(kUnverified, d.ParentID+"/"+d.Name)
}

// deleteClaim removes a claim record and its index entries (not the owner key).
func deleteClaim(tx Txn, parentID, domain string) error {
	if err := tx.Delete(claimKey(parentID, domain)); err != nil {
		return err
	}
	if err := tx.IndexRemove(kParentDomains+parentID, domain); err != nil {
		return err
	}
	if err := tx.IndexRemove(kDomainClaimants+kp(domain), parentID); err != nil {
		return err
	}
	return tx.IndexRemove(kUnverified, parentID+"/"+domain)
}

// takeOwnership makes parentID the verified owner of domain, unless another
// parent org already is (ErrDomainClaimed).
func takeOwnership(tx Txn, parentID, domain string) error {
	owner, err := getRef(tx, ownerKey(domain))
	switch {
	case err == nil && owner == parentID:
		return nil
	case err == nil:
		return fmt.Errorf("%s: %w", domain, ErrDomainClaimed)
	case !errors.Is(err, ErrNotFound):
		return err
	}
	return tx.Put(ownerKey(domain), []byte(parentID), 0)
}

func validDomain(d string) bool {
	return d != "" && len(d) <= 253 && strings.Contains(d, ".") &&
		!strings.ContainsAny(d, "/@ \t\r\n") && !strings.HasPrefix(d, ".")
}

func validDomainStatus(st DomainStatus) bool {
	return st == DomainPending || st == DomainVerified || st == DomainFailed
}

// AddDomainClaim records a parent org's claim on a domain. There is one
// claim per (parent org, domain) (ErrAlreadyExists); several parent orgs
// may hold unverified claims, but none may claim a domain another parent
// org has verified (ErrDomainClaimed). An empty Status means pending.
func (s *Store) AddDomainClaim(ctx context.Context, d *Domain) error {
	d.Name = normDomain(d.Name)
	if d.Status == "" {
		d.Status = DomainPending
	}
	switch {
	case !validDomain(d.Name):
		return fmt.Errorf("store: add domain claim: %w", invalidf("bad domain %q", d.Name))
	case !validDomainStatus(d.Status):
		return fmt.Errorf("store: add domain claim: %w", invalidf("unknown status %q", d.Status))
	}
	now := s.Now().UTC()
	if d.CreatedAt.IsZero() {
		d.CreatedAt = now
	}
	if d.Status == DomainVerified && d.VerifiedAt.IsZero() {
		d.VerifiedAt = now
	}
	rec := *d
	err := s.b.Update(ctx, func(tx Txn) error {
		if err := mustExist(tx, kParent+rec.ParentID, "parent org", rec.ParentID); err != nil {
			return err
		}
		if ok, err := exists(tx, claimKey(rec.ParentID, rec.Name)); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("this parent org already claims %s: %w", rec.Name, ErrAlreadyExists)
		}
		owner, err := getRef(tx, ownerKey(rec.Name))
		if err == nil && owner != rec.ParentID {
			return fmt.Errorf("%s: %w", rec.Name, ErrDomainClaimed)
		} else if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if rec.Status == DomainVerified {
			if err := takeOwnership(tx, rec.ParentID, rec.Name); err != nil {
				return err
			}
		}
		if err := putClaim(tx, &rec); err != nil {
			return err
		}
		if err := tx.IndexAdd(kParentDomains+rec.ParentID, rec.Name); err != nil {
			return err
		}
		return tx.IndexAdd(kDomainClaimants+kp(rec.Name), rec.ParentID)
	})
	if err != nil {
		return fmt.Errorf("store: add domain claim %s for %s: %w", d.Name, d.ParentID, err)
	}
	return nil
}

// GetDomainClaim reads a parent org's claim on a domain, token included.
func (s *Store) GetDomainClaim(ctx context.Context, parentID, domain string) (*Domain, error) {
	var d *Domain
	err := s.b.View(ctx, func(tx Reader) (err error) {
		d, err = getClaim(tx, parentID, normDomain(domain))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: get domain claim %s for %s: %w", domain, parentID, err)
	}
	return d, nil
}

// ListDomainClaims lists a parent org's claims in every state, by domain.
func (s *Store) ListDomainClaims(ctx context.Context, parentID string) ([]Domain, error) {
	out, err := s.listClaims(ctx, kParentDomains+parentID, func(domain string) (string, string) { return parentID, domain })
	if err != nil {
		return nil, fmt.Errorf("store: list domain claims of %s: %w", parentID, err)
	}
	return out, nil
}

// ListVerifiedDomains lists the domains a parent org has verified.
func (s *Store) ListVerifiedDomains(ctx context.Context, parentID string) ([]Domain, error) {
	all, err := s.ListDomainClaims(ctx, parentID)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, d := range all {
		if d.Status == DomainVerified {
			out = append(out, d)
		}
	}
	return out, nil
}

// ListClaimsForDomain lists every parent org's claim on one domain.
func (s *Store) ListClaimsForDomain(ctx context.Context, domain string) ([]Domain, error) {
	domain = normDomain(domain)
	out, err := s.listClaims(ctx, kDomainClaimants+kp(domain), func(parentID string) (string, string) { return parentID, domain })
	if err != nil {
		return nil, fmt.Errorf("store: list claims on %s: %w", domain, err)
	}
	return out, nil
}

// ListPendingDomainClaims lists every claim, across parent orgs, that is not
// verified yet (status pending or failed): the background re-checker's work.
func (s *Store) ListPendingDomainClaims(ctx context.Context) ([]Domain, error) {
	out, err := s.listClaims(ctx, kUnverified, func(m string) (string, string) {
		parentID, domain, _ := strings.Cut(m, "/")
		return parentID, domain
	})
	if err != nil {
		return nil, fmt.Errorf("store: list pending domain claims: %w", err)
	}
	return out, nil
}

func (s *Store) listClaims(ctx context.Context, index string, split func(member string) (parentID, domain string)) ([]Domain, error) {
	var out []Domain
	err := s.b.View(ctx, func(tx Reader) error {
		members, err := tx.IndexRange(index, "", 0)
		if err != nil {
			return err
		}
		out = make([]Domain, 0, len(members))
		for _, m := range members {
			parentID, domain := split(m)
			d, err := getClaim(tx, parentID, domain)
			if errors.Is(err, ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			out = append(out, *d)
		}
		return nil
	})
	return out, err
}

// UpdateDomainClaim reads, changes and writes a claim in one transaction
// (for last_checked_at, last_error, failed). Setting status verified goes
// through the same ownership check as VerifyDomainClaim; leaving verified
// releases the domain.
func (s *Store) UpdateDomainClaim(ctx context.Context, parentID, domain string, fn func(*Domain) error) (*Domain, error) {
	domain = normDomain(domain)
	now := s.Now().UTC()
	var out *Domain
	err := s.b.Update(ctx, func(tx Txn) error {
		old, err := getClaim(tx, parentID, domain)
		if err != nil {
			return err
		}
		cur := *old
		if err := fn(&cur); err != nil {
			return err
		}
		switch {
		case cur.Name != old.Name || cur.ParentID != old.ParentID:
			return invalidf("the domain and parent org of a claim cannot change")
		case !validDomainStatus(cur.Status):
			return invalidf("unknown status %q", cur.Status)
		}
		switch {
		case cur.Status == DomainVerified && old.Status != DomainVerified:
			if err := takeOwnership(tx, parentID, domain); err != nil {
				return err
			}
			if cur.VerifiedAt.IsZero() {
				cur.VerifiedAt = now
			}
		case cur.Status != DomainVerified && old.Status == DomainVerified:
			if err := releaseRef(tx, ownerKey(domain), parentID); err != nil {
				return err
			}
			cur.VerifiedAt = time.Time{}
		}
		out = &cur
		return putClaim(tx, &cur)
	})
	if err != nil {
		return nil, fmt.Errorf("store: update domain claim %s for %s: %w", domain, parentID, err)
	}
	return out, nil
}

// VerifyDomainClaim marks a parent org's claim verified at `at` and makes
// it the domain's owner, atomically: if another parent org has verified the
// domain first, nothing changes and the error is ErrDomainClaimed.
// Verifying an already verified claim again only records the check.
func (s *Store) VerifyDomainClaim(ctx context.Context, parentID, domain string, at time.Time) (*Domain, error) {
	domain = normDomain(domain)
	var out *Domain
	err := s.b.Update(ctx, func(tx Txn) error {
		d, err := getClaim(tx, parentID, domain)
		if err != nil {
			return err
		}
		if err := takeOwnership(tx, parentID, domain); err != nil {
			return err
		}
		if d.Status != DomainVerified {
			d.Status = DomainVerified
			d.VerifiedAt = at
		}
		d.LastCheckedAt = at
		d.LastError = ""
		out = d
		return putClaim(tx, d)
	})
	if err != nil {
		return nil, fmt.Errorf("store: verify domain %s for %s: %w", domain, parentID, err)
	}
	return out, nil
}

// DeleteDomainClaim removes a parent org's claim. If it was the verified
// one, the domain is no longer captured.
func (s *Store) DeleteDomainClaim(ctx context.Context, parentID, domain string) error {
	domain = normDomain(domain)
	err := s.b.Update(ctx, func(tx Txn) error {
		if ok, err := exists(tx, claimKey(parentID, domain)); err != nil || !ok {
			return cmp.Or(err, ErrNotFound)
		}
		if err := releaseRef(tx, ownerKey(domain), parentID); err != nil {
			return err
		}
		return deleteClaim(tx, parentID, domain)
	})
	if err != nil {
		return fmt.Errorf("store: delete domain claim %s for %s: %w", domain, parentID, err)
	}
	return nil
}

// CaptureLookup tells which parent org has verified domain: one Get on the
// hot sign-in path. ok is false when nobody has.
func (s *Store) CaptureLookup(ctx context.Context, domain string) (parentID string, ok bool, err error) {
	raw, err := s.b.Get(ctx, ownerKey(normDomain(domain)))
	if errors.Is(err, ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: capture lookup %s: %w", domain, err)
	}
	return string(raw), true, nil
}

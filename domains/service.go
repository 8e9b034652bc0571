package domains

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/store"
)

// Error is a refusal with an HTTP status and a stable code.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Service adds, verifies and removes domain claims.
type Service struct {
	Store    *store.Store
	Resolver Resolver
	// Label is the TXT record's name under the domain (default _ssogate-challenge).
	Label string
	// Blocked are extra domains that can never be claimed (normalised).
	Blocked map[string]bool
	// PendingTimeout fails a claim that has not verified this long after it was added (default 7 days).
	PendingTimeout time.Duration
	// Audit records events; nil drops them.
	Audit  func(ctx context.Context, e *store.AuditEvent)
	Logger *zap.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) audit(ctx context.Context, e *store.AuditEvent) {
	if s.Audit != nil {
		s.Audit(ctx, e)
	}
}

func (s *Service) pendingTimeout() time.Duration {
	if s.PendingTimeout > 0 {
		return s.PendingTimeout
	}
	return 7 * 24 * time.Hour
}

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newToken is 160 random bits, DNS-safe.
func newToken() string {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Errorf("domains: reading randomness: %w", err))
	}
	return tokenEncoding.EncodeToString(b[:])
}

// Add records a pending claim for the parent org and returns it with the
// TXT record to publish.
func (s *Service) Add(ctx context.Context, parentID, raw, actor string) (*store.Domain, error) {
	name, err := policy.NormalizeDomain(raw, s.Blocked)
	if err != nil {
		var de *policy.DomainError
		if errors.As(err, &de) {
			return nil, &Error{Status: 400, Code: de.Code, Message: de.Message}
		}
		return nil, err
	}
	if owner, ok, err := s.Store.CaptureLookup(ctx, name); err != nil {
		return nil, err
	} else if ok && owner != parentID {
		return nil, claimedErr(name)
	}
	tok := newToken()
	d := &store.Domain{Name: name, ParentID: parentID, Status: store.DomainPending, Token: tok,
		TXTName: RecordName(s.Label, name), TXTValue: RecordValue(tok), CreatedAt: s.now().UTC()}
	err = s.Store.AddDomainClaim(ctx, d)
	switch {
	case errors.Is(err, store.ErrDomainClaimed):
		return nil, claimedErr(name)
	case errors.Is(err, store.ErrAlreadyExists):
		return nil, &Error{Status: 409, Code: "domain_exists", Message: name + " is already on your list"}
	case err != nil:
		return nil, err
	}
	s.audit(ctx, &store.AuditEvent{ParentID: parentID, Actor: actor, Action: "domain.add", Target: name, Outcome: "success"})
	return d, nil
}

func claimedErr(name string) error {
	return &Error{Status: 409, Code: "domain_claimed", Message: name + " is verified by another organization"}
}

// Get returns one claim of the parent org.
func (s *Service) Get(ctx context.Context, parentID, raw string) (*store.Domain, error) {
	name, err := policy.NormalizeDomain(raw, nil)
	if err != nil {
		return nil, &Error{Status: 404, Code: "not_found", Message: "no such domain"}
	}
	d, err := s.Store.GetDomainClaim(ctx, parentID, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &Error{Status: 404, Code: "not_found", Message: "no such domain"}
	}
	return d, err
}

// Verify checks DNS now (the console's refresh button). A verified claim
// is returned as is; a miss keeps the claim pending with last_error set.
func (s *Service) Verify(ctx context.Context, parentID, raw, actor string) (*store.Domain, error) {
	d, err := s.Get(ctx, parentID, raw)
	if err != nil || d.Status == store.DomainVerified {
		return d, err
	}
	if owner, ok, err := s.Store.CaptureLookup(ctx, d.Name); err != nil {
		return nil, err
	} else if ok && owner != parentID {
		s.recordMiss(ctx, d, s.now().UTC(), "verified by another organization")
		return nil, claimedErr(d.Name)
	}
	return s.check(ctx, d, actor)
}

// check looks the record up and records the outcome.
func (s *Service) check(ctx context.Context, d *store.Domain, actor string) (*store.Domain, error) {
	now := s.now().UTC()
	dnsErr := check(ctx, s.Resolver, s.Label, d.Name, d.Token)
	if dnsErr == nil {
		v, err := s.Store.VerifyDomainClaim(ctx, d.ParentID, d.Name, now)
		if errors.Is(err, store.ErrDomainClaimed) {
			s.recordMiss(ctx, d, now, "verified by another organization first")
			s.audit(ctx, &store.AuditEvent{ParentID: d.ParentID, Actor: actor, Action: "domain.verify", Target: d.Name, Outcome: "failure", Reason: "domain_claimed"})
			return nil, claimedErr(d.Name)
		}
		if err != nil {
			return nil, err
		}
		s.audit(ctx, &store.AuditEvent{ParentID: d.ParentID, Actor: actor, Action: "domain.verify", Target: d.Name, Outcome: "success"})
		return v, nil
	}
	status := store.DomainPending
	if now.Sub(d.CreatedAt) > s.pendingTimeout() {
		status = store.DomainFailed
	}
	out, err := s.Store.UpdateDomainClaim(ctx, d.ParentID, d.Name, func(c *store.Domain) error {
		c.LastCheckedAt, c.LastError = now, dnsErr.Error()
		if c.Status != store.DomainVerified {
			c.Status = status
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.audit(ctx, &store.AuditEvent{ParentID: d.ParentID, Actor: actor, Action: "domain.verify", Target: d.Name,
		Outcome: "failure", Reason: dnsErr.Error()})
	return out, nil
}

func (s *Service) recordMiss(ctx context.Context, d *store.Domain, now time.Time, reason string) {
	_, _ = s.Store.UpdateDomainClaim(ctx, d.ParentID, d.Name, func(c *store.Domain) error {
		c.LastCheckedAt, c.LastError = now, reason
		return nil
	})
}

// Delete removes the parent org's claim; if it was verified, the domain
// is no longer captured.
func (s *Service) Delete(ctx context.Context, parentID, raw, actor string) error {
	d, err := s.Get(ctx, parentID, raw)
	if err != nil {
		return err
	}
	if err := s.Store.DeleteDomainClaim(ctx, parentID, d.Name); err != nil {
		return err
	}
	s.audit(ctx, &store.AuditEvent{ParentID: parentID, Actor: actor, Action: "domain.delete", Target: d.Name, Outcome: "success",
		Details: map[string]string{"status": string(d.Status)}})
	return nil
}

// CheckPending re-checks every pending claim once (the background worker's
// step) and returns how many verified.
func (s *Service) CheckPending(ctx context.Context) (int, error) {
	claims, err := s.Store.ListPendingDomainClaims(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range claims {
		d := &claims[i]
		if d.Status != store.DomainPending {
			continue
		}
		v, err := s.check(ctx, d, "system")
		if err != nil && ctx.Err() != nil {
			return n, ctx.Err()
		}
		if err == nil && v.Status == store.DomainVerified {
			n++
		}
	}
	return n, nil
}

// Run re-checks pending claims every interval until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.CheckPending(ctx)
			if err != nil && ctx.Err() == nil && s.Logger != nil {
				s.Logger.Warn("re-checking pending domains", zap.Error(err))
			} else if n > 0 && s.Logger != nil {
				s.Logger.Info("domains verified in the background", zap.Int("count", n))
			}
		}
	}
}

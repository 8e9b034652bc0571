package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

func addClaim(t *testing.T, s *store.Store, parentID, domain string) *store.Domain {
	t.Helper()
	d := &store.Domain{Name: domain, ParentID: parentID, Token: "tok-" + parentID,
		TXTName: "_ssogate-challenge." + domain, TXTValue: "ssogate-verification=tok-" + parentID}
	must(t, "AddDomainClaim "+domain, s.AddDomainClaim(t.Context(), d))
	return d
}

func wantCapture(t *testing.T, s *store.Store, domain, wantParent string) {
	t.Helper()
	got, ok, err := s.CaptureLookup(t.Context(), domain)
	must(t, "CaptureLookup", err)
	if want := wantParent != ""; ok != want || got != wantParent {
		t.Errorf("CaptureLookup(%q) = %q, %v; want %q, %v", domain, got, ok, wantParent, want)
	}
}

func claimKeys(list []store.Domain) []string {
	var out []string
	for _, d := range list {
		out = append(out, d.ParentID+"/"+d.Name+"/"+string(d.Status))
	}
	slices.Sort(out)
	return out
}

func testDomains(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, c := newStore(t, newBackend)
	p1, p2, p3 := mkParent(t, s, "One"), mkParent(t, s, "Two"), mkParent(t, s, "Three")

	d := addClaim(t, s, p1.ID, "Acme.COM.")
	if d.Name != "acme.com" || d.Status != store.DomainPending || !d.CreatedAt.Equal(c.Now()) {
		t.Errorf("AddDomainClaim stored %+v; want name normalised, status pending, CreatedAt now", d)
	}
	addClaim(t, s, p2.ID, "acme.com") // several parents may hold pending claims
	addClaim(t, s, p1.ID, "acme.io")
	wantErr(t, "AddDomainClaim twice", s.AddDomainClaim(ctx, &store.Domain{Name: "ACME.com", ParentID: p1.ID}), store.ErrAlreadyExists)
	wantErr(t, "AddDomainClaim for a missing parent", s.AddDomainClaim(ctx, &store.Domain{Name: "x.com", ParentID: "nope"}), store.ErrNotFound)
	for _, bad := range []string{"", "localhost", "a/b.com", "a@b.com", ".com"} {
		wantErr(t, "AddDomainClaim "+bad, s.AddDomainClaim(ctx, &store.Domain{Name: bad, ParentID: p1.ID}), store.ErrInvalid)
	}
	wantCapture(t, s, "acme.com", "")

	got, err := s.GetDomainClaim(ctx, p1.ID, "ACME.com")
	must(t, "GetDomainClaim", err)
	if got.Token != "tok-"+p1.ID || got.TXTValue != d.TXTValue || got.Status != store.DomainPending {
		t.Errorf("GetDomainClaim = %+v; the store must keep the token", got)
	}
	_, err = s.GetDomainClaim(ctx, p3.ID, "acme.com")
	wantErr(t, "GetDomainClaim(no claim)", err, store.ErrNotFound)
	pending, err := s.ListPendingDomainClaims(ctx)
	must(t, "ListPendingDomainClaims", err)
	if got, want := claimKeys(pending), sorted(p1.ID+"/acme.com/pending", p2.ID+"/acme.com/pending", p1.ID+"/acme.io/pending"); !slices.Equal(got, want) {
		t.Errorf("ListPendingDomainClaims = %v, want %v", got, want)
	}

	// Verification is exclusive.
	c.Advance(time.Minute)
	at := c.Now()
	v, err := s.VerifyDomainClaim(ctx, p1.ID, "acme.com", at)
	must(t, "VerifyDomainClaim", err)
	if v.Status != store.DomainVerified || !v.VerifiedAt.Equal(at) || !v.LastCheckedAt.Equal(at) || v.Token != "tok-"+p1.ID {
		t.Errorf("VerifyDomainClaim returned %+v", v)
	}
	wantCapture(t, s, "acme.com", p1.ID)
	wantCapture(t, s, "ACME.Com", p1.ID)
	wantCapture(t, s, "sub.acme.com", "")
	wantCapture(t, s, "acme.io", "")
	_, err = s.VerifyDomainClaim(ctx, p1.ID, "acme.com", at.Add(time.Hour)) // idempotent
	must(t, "VerifyDomainClaim again", err)
	if got, _ := s.GetDomainClaim(ctx, p1.ID, "acme.com"); got == nil || !got.VerifiedAt.Equal(at) {
		t.Errorf("verifying again moved VerifiedAt: %+v", got)
	}
	_, err = s.VerifyDomainClaim(ctx, p2.ID, "acme.com", at)
	wantErr(t, "VerifyDomainClaim by a second parent", err, store.ErrDomainClaimed)
	if got, _ := s.GetDomainClaim(ctx, p2.ID, "acme.com"); got == nil || got.Status != store.DomainPending {
		t.Errorf("a refused verification changed the claim: %+v", got)
	}
	wantErr(t, "AddDomainClaim of a verified domain", s.AddDomainClaim(ctx, &store.Domain{Name: "acme.com", ParentID: p3.ID}), store.ErrDomainClaimed)
	_, err = s.VerifyDomainClaim(ctx, p3.ID, "acme.com", at)
	wantErr(t, "VerifyDomainClaim without a claim", err, store.ErrNotFound)
	wantCapture(t, s, "acme.com", p1.ID)

	verified, err := s.ListVerifiedDomains(ctx, p1.ID)
	must(t, "ListVerifiedDomains", err)
	if got := claimKeys(verified); !slices.Equal(got, []string{p1.ID + "/acme.com/verified"}) {
		t.Errorf("ListVerifiedDomains = %v", got)
	}
	all, err := s.ListDomainClaims(ctx, p1.ID)
	must(t, "ListDomainClaims", err)
	if got := claimKeys(all); !slices.Equal(got, sorted(p1.ID+"/acme.com/verified", p1.ID+"/acme.io/pending")) {
		t.Errorf("ListDomainClaims = %v", got)
	}
	onAcme, err := s.ListClaimsForDomain(ctx, "acme.com")
	must(t, "ListClaimsForDomain", err)
	if got := claimKeys(onAcme); !slices.Equal(got, sorted(p1.ID+"/acme.com/verified", p2.ID+"/acme.com/pending")) {
		t.Errorf("ListClaimsForDomain = %v", got)
	}
	pending, _ = s.ListPendingDomainClaims(ctx)
	if got, want := claimKeys(pending), sorted(p2.ID+"/acme.com/pending", p1.ID+"/acme.io/pending"); !slices.Equal(got, want) {
		t.Errorf("ListPendingDomainClaims after verify = %v, want %v", got, want)
	}

	// Deleting the verified claim releases the domain.
	must(t, "DeleteDomainClaim", s.DeleteDomainClaim(ctx, p1.ID, "ACME.com"))
	wantCapture(t, s, "acme.com", "")
	_, err = s.GetDomainClaim(ctx, p1.ID, "acme.com")
	wantErr(t, "GetDomainClaim after delete", err, store.ErrNotFound)
	wantErr(t, "DeleteDomainClaim twice", s.DeleteDomainClaim(ctx, p1.ID, "acme.com"), store.ErrNotFound)
	_, err = s.VerifyDomainClaim(ctx, p2.ID, "acme.com", c.Now())
	must(t, "VerifyDomainClaim after release", err)
	wantCapture(t, s, "acme.com", p2.ID)
	must(t, "DeleteDomainClaim", s.DeleteDomainClaim(ctx, p2.ID, "acme.com"))
	wantCapture(t, s, "acme.com", "")
	// Deleting an unverified claim leaves the owner alone.
	addClaim(t, s, p2.ID, "beta.com")
	addClaim(t, s, p1.ID, "beta.com")
	_, err = s.VerifyDomainClaim(ctx, p1.ID, "beta.com", c.Now())
	must(t, "VerifyDomainClaim", err)
	must(t, "DeleteDomainClaim", s.DeleteDomainClaim(ctx, p2.ID, "beta.com"))
	wantCapture(t, s, "beta.com", p1.ID)
	if list, _ := s.ListClaimsForDomain(ctx, "acme.com"); len(list) != 0 {
		t.Errorf("ListClaimsForDomain after deletes = %v", claimKeys(list))
	}
}

func testDomainStatusUpdates(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, c := newStore(t, newBackend)
	p1, p2 := mkParent(t, s, "One"), mkParent(t, s, "Two")
	addClaim(t, s, p1.ID, "acme.com")
	addClaim(t, s, p2.ID, "acme.com")

	checked := c.Now().Add(time.Minute)
	upd, err := s.UpdateDomainClaim(ctx, p2.ID, "acme.com", func(d *store.Domain) error {
		d.LastCheckedAt = checked
		d.LastError = "no TXT record"
		d.Status = store.DomainFailed
		return nil
	})
	must(t, "UpdateDomainClaim", err)
	if upd.Status != store.DomainFailed || upd.LastError != "no TXT record" || !upd.LastCheckedAt.Equal(checked) || upd.Token != "tok-"+p2.ID {
		t.Errorf("UpdateDomainClaim returned %+v", upd)
	}
	// Failed claims stay on the re-checker's list.
	pending, _ := s.ListPendingDomainClaims(ctx)
	if got := claimKeys(pending); !slices.Equal(got, sorted(p1.ID+"/acme.com/pending", p2.ID+"/acme.com/failed")) {
		t.Errorf("ListPendingDomainClaims = %v", got)
	}
	_, err = s.UpdateDomainClaim(ctx, p2.ID, "acme.com", func(d *store.Domain) error { d.Name = "other.com"; return nil })
	wantErr(t, "UpdateDomainClaim renaming", err, store.ErrInvalid)
	_, err = s.UpdateDomainClaim(ctx, p2.ID, "acme.com", func(d *store.Domain) error { d.Status = "bogus"; return nil })
	wantErr(t, "UpdateDomainClaim to an unknown status", err, store.ErrInvalid)
	_, err = s.UpdateDomainClaim(ctx, p2.ID, "other.com", func(*store.Domain) error { return nil })
	wantErr(t, "UpdateDomainClaim(no claim)", err, store.ErrNotFound)

	// Setting verified through an update takes the same ownership check.
	_, err = s.UpdateDomainClaim(ctx, p1.ID, "acme.com", func(d *store.Domain) error { d.Status = store.DomainVerified; return nil })
	must(t, "UpdateDomainClaim to verified", err)
	wantCapture(t, s, "acme.com", p1.ID)
	_, err = s.UpdateDomainClaim(ctx, p2.ID, "acme.com", func(d *store.Domain) error { d.Status = store.DomainVerified; return nil })
	wantErr(t, "UpdateDomainClaim to verified by a second parent", err, store.ErrDomainClaimed)
	if got, _ := s.GetDomainClaim(ctx, p2.ID, "acme.com"); got == nil || got.Status != store.DomainFailed {
		t.Errorf("a refused update changed the claim: %+v", got)
	}
	// Leaving verified releases the domain.
	back, err := s.UpdateDomainClaim(ctx, p1.ID, "acme.com", func(d *store.Domain) error { d.Status = store.DomainPending; return nil })
	must(t, "UpdateDomainClaim back to pending", err)
	if !back.VerifiedAt.IsZero() {
		t.Errorf("VerifiedAt kept after leaving verified: %+v", back)
	}
	wantCapture(t, s, "acme.com", "")
	_, err = s.VerifyDomainClaim(ctx, p2.ID, "acme.com", c.Now())
	must(t, "VerifyDomainClaim", err)
	wantCapture(t, s, "acme.com", p2.ID)
}

// 20 parent orgs race to verify the same domain: exactly one owns it.
func testDomainVerifyRace(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	s, c := newStore(t, newBackend)
	parents := make([]*store.ParentOrg, 20)
	for i := range parents {
		parents[i] = mkParent(t, s, fmt.Sprint("P", i))
		addClaim(t, s, parents[i].ID, "contested.com")
	}
	errs := race(len(parents), func(i int) error {
		_, err := s.VerifyDomainClaim(ctx, parents[i].ID, "contested.com", c.Now())
		return err
	})
	winner := oneWinner(t, errs, store.ErrDomainClaimed)
	wantCapture(t, s, "contested.com", parents[winner].ID)
	claims, err := s.ListClaimsForDomain(ctx, "contested.com")
	must(t, "ListClaimsForDomain", err)
	verified := 0
	for _, d := range claims {
		if d.Status == store.DomainVerified {
			verified++
			if d.ParentID != parents[winner].ID {
				t.Errorf("claim of %s is verified, the winner is %s", d.ParentID, parents[winner].ID)
			}
		}
	}
	if verified != 1 || len(claims) != len(parents) {
		t.Errorf("%d verified of %d claims, want 1 of %d", verified, len(claims), len(parents))
	}
}

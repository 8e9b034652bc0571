package storetest

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

// mergeFixture is two parent orgs about to merge: "surv" keeps acme.com
// and org a; "inc" brings orgs b1 and b2, verified beta.com, a pending
// claim on pend.com and one connection.
type mergeFixture struct {
	s         *store.Store
	c         *clock
	surv, inc *store.ParentOrg
	a, b1, b2 *store.Org
	conn      *store.Connection
	proposal  *store.MergeProposal
}

func newMergeFixture(t *testing.T, newBackend Factory) *mergeFixture {
	t.Helper()
	ctx := t.Context()
	s, c := newStore(t, newBackend)
	f := &mergeFixture{s: s, c: c, surv: mkParent(t, s, "Surviving"), inc: mkParent(t, s, "Incoming")}
	f.a = mkOrg(t, s, f.surv.ID, "a")
	f.b1, f.b2 = mkOrg(t, s, f.inc.ID, "b1"), mkOrg(t, s, f.inc.ID, "b2")
	for _, d := range []struct {
		parent *store.ParentOrg
		name   string
	}{{f.surv, "acme.com"}, {f.inc, "beta.com"}} {
		addClaim(t, s, d.parent.ID, d.name)
		_, err := s.VerifyDomainClaim(ctx, d.parent.ID, d.name, c.Now())
		must(t, "VerifyDomainClaim", err)
	}
	addClaim(t, s, f.inc.ID, "pend.com")
	must(t, "CreateConnection", s.CreateConnection(ctx, &store.Connection{ParentID: f.surv.ID, Type: store.ConnSAML, Name: "surv-idp"}))
	f.conn = &store.Connection{ParentID: f.inc.ID, Type: store.ConnOIDC, Name: "inc-idp", ClientSecret: "sec", DefaultOrgID: f.b1.ID}
	must(t, "CreateConnection", s.CreateConnection(ctx, f.conn))
	f.proposal = &store.MergeProposal{SurvivingParent: f.surv.ID, IncomingParent: f.inc.ID, ProposedBy: "sales@vendor",
		ExpiresAt: c.Now().Add(7 * 24 * time.Hour)}
	must(t, "CreateMergeProposal", s.CreateMergeProposal(ctx, f.proposal))
	return f
}

func (f *mergeFixture) approve(t *testing.T) {
	t.Helper()
	_, err := f.s.UpdateMergeProposal(t.Context(), f.proposal.ID, func(p *store.MergeProposal) error {
		p.SurvivingApprove, p.IncomingApprove = "admin@acme.com", "admin@beta.com"
		return nil
	})
	must(t, "approve", err)
}

// directorySnapshot is everything a merge may touch, read through the Store.
type directorySnapshot struct {
	Orgs     map[string][]store.Org
	Claims   map[string][]store.Domain
	Conns    map[string][]store.Connection
	Capture  map[string]string
	Proposal store.MergeProposal
}

func (f *mergeFixture) snapshot(t *testing.T) directorySnapshot {
	t.Helper()
	ctx := t.Context()
	snap := directorySnapshot{Orgs: map[string][]store.Org{}, Claims: map[string][]store.Domain{},
		Conns: map[string][]store.Connection{}, Capture: map[string]string{}}
	for _, p := range []string{f.surv.ID, f.inc.ID} {
		var err error
		snap.Orgs[p], err = f.s.ListOrgs(ctx, p)
		must(t, "ListOrgs", err)
		snap.Claims[p], err = f.s.ListDomainClaims(ctx, p)
		must(t, "ListDomainClaims", err)
		snap.Conns[p], err = f.s.ListConnections(ctx, p)
		must(t, "ListConnections", err)
	}
	for _, d := range []string{"acme.com", "beta.com", "pend.com"} {
		owner, _, err := f.s.CaptureLookup(ctx, d)
		must(t, "CaptureLookup", err)
		snap.Capture[d] = owner
	}
	p, err := f.s.GetMergeProposal(ctx, f.proposal.ID)
	must(t, "GetMergeProposal", err)
	snap.Proposal = *p
	return snap
}

func (f *mergeFixture) wantUnchanged(t *testing.T, before directorySnapshot) {
	t.Helper()
	if after := f.snapshot(t); !reflect.DeepEqual(before, after) {
		t.Errorf("a refused merge changed the directory:\nbefore %+v\nafter  %+v", before, after)
	}
}

func testMergeProposals(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	f := newMergeFixture(t, newBackend)
	s, p := f.s, f.proposal
	if p.ID == "" || p.Status != store.MergeProposed || p.CreatedAt.IsZero() {
		t.Errorf("CreateMergeProposal did not fill ID, status, CreatedAt: %+v", p)
	}
	if !slices.Equal(sorted(p.OrgIDs...), sorted(f.b1.ID, f.b2.ID)) {
		t.Errorf("an empty OrgIDs should mean every org of the incoming parent, got %v", p.OrgIDs)
	}
	for _, parent := range []string{f.surv.ID, f.inc.ID} {
		list, err := s.ListMergeProposals(ctx, parent)
		must(t, "ListMergeProposals", err)
		if len(list) != 1 || list[0].ID != p.ID {
			t.Errorf("ListMergeProposals(%s) = %+v", parent, list)
		}
	}
	other := mkParent(t, s, "Other")
	if list, _ := s.ListMergeProposals(ctx, other.ID); len(list) != 0 {
		t.Errorf("ListMergeProposals(uninvolved) = %+v", list)
	}
	got, err := s.GetMergeProposal(ctx, p.ID)
	must(t, "GetMergeProposal", err)
	if got.SurvivingParent != f.surv.ID || got.IncomingParent != f.inc.ID || got.ProposedBy != "sales@vendor" {
		t.Errorf("GetMergeProposal = %+v", got)
	}
	_, err = s.GetMergeProposal(ctx, "nope")
	wantErr(t, "GetMergeProposal(unknown)", err, store.ErrNotFound)

	wantErr(t, "CreateMergeProposal into itself",
		s.CreateMergeProposal(ctx, &store.MergeProposal{SurvivingParent: f.inc.ID, IncomingParent: f.inc.ID}), store.ErrInvalid)
	wantErr(t, "CreateMergeProposal with a missing parent",
		s.CreateMergeProposal(ctx, &store.MergeProposal{SurvivingParent: "nope", IncomingParent: f.inc.ID}), store.ErrNotFound)
	wantErr(t, "CreateMergeProposal moving an org of another parent",
		s.CreateMergeProposal(ctx, &store.MergeProposal{SurvivingParent: f.surv.ID, IncomingParent: f.inc.ID, OrgIDs: []string{f.a.ID}}), store.ErrInvalid)
	wantErr(t, "CreateMergeProposal moving a missing org",
		s.CreateMergeProposal(ctx, &store.MergeProposal{SurvivingParent: f.surv.ID, IncomingParent: f.inc.ID, OrgIDs: []string{"nope"}}), store.ErrNotFound)

	upd, err := s.UpdateMergeProposal(ctx, p.ID, func(p *store.MergeProposal) error { p.IncomingApprove = "admin@beta.com"; return nil })
	must(t, "UpdateMergeProposal", err)
	if upd.IncomingApprove != "admin@beta.com" {
		t.Errorf("UpdateMergeProposal returned %+v", upd)
	}
	_, err = s.UpdateMergeProposal(ctx, p.ID, func(p *store.MergeProposal) error { p.Status = store.MergeApplied; return nil })
	wantErr(t, "UpdateMergeProposal to applied", err, store.ErrInvalid)
	_, err = s.UpdateMergeProposal(ctx, p.ID, func(p *store.MergeProposal) error { p.IncomingParent = other.ID; return nil })
	wantErr(t, "UpdateMergeProposal changing sides", err, store.ErrInvalid)
	_, err = s.UpdateMergeProposal(ctx, "nope", func(*store.MergeProposal) error { return nil })
	wantErr(t, "UpdateMergeProposal(unknown)", err, store.ErrNotFound)
	if got, _ := s.GetMergeProposal(ctx, p.ID); got == nil || got.Status != store.MergeProposed {
		t.Errorf("refused updates changed the proposal: %+v", got)
	}
}

func testMergeApply(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	f := newMergeFixture(t, newBackend)
	s := f.s
	f.approve(t)
	f.c.Advance(time.Hour)
	at := f.c.Now()
	applied, err := s.ApplyMerge(ctx, f.proposal.ID, at)
	must(t, "ApplyMerge", err)
	if applied.Status != store.MergeApplied || !applied.DecidedAt.Equal(at) {
		t.Errorf("ApplyMerge returned %+v", applied)
	}

	snap := f.snapshot(t)
	if got := orgSlugs(snap.Orgs[f.surv.ID]); !slices.Equal(got, []string{"a", "b1", "b2"}) {
		t.Errorf("orgs of the surviving parent = %v", got)
	}
	if got := snap.Orgs[f.inc.ID]; len(got) != 0 {
		t.Errorf("orgs left under the incoming parent = %v", orgSlugs(got))
	}
	if o, _ := s.GetOrg(ctx, f.b1.ID); o == nil || o.ParentID != f.surv.ID {
		t.Errorf("GetOrg(b1) after merge = %+v", o)
	}
	if got := claimKeys(snap.Claims[f.surv.ID]); !slices.Equal(got, sorted(f.surv.ID+"/acme.com/verified", f.surv.ID+"/beta.com/verified")) {
		t.Errorf("claims of the surviving parent = %v", got)
	}
	if got := claimKeys(snap.Claims[f.inc.ID]); !slices.Equal(got, []string{f.inc.ID + "/pend.com/pending"}) {
		t.Errorf("claims of the incoming parent = %v (pending claims stay)", got)
	}
	if d, err := s.GetDomainClaim(ctx, f.surv.ID, "beta.com"); err != nil || d.Token != "tok-"+f.inc.ID {
		t.Errorf("moved claim = %+v, %v; want the original token", d, err)
	}
	_, err = s.GetDomainClaim(ctx, f.inc.ID, "beta.com")
	wantErr(t, "GetDomainClaim(incoming, beta.com) after merge", err, store.ErrNotFound)
	if want := map[string]string{"acme.com": f.surv.ID, "beta.com": f.surv.ID, "pend.com": ""}; !reflect.DeepEqual(snap.Capture, want) {
		t.Errorf("capture after merge = %v, want %v", snap.Capture, want)
	}
	if claims, _ := s.ListClaimsForDomain(ctx, "beta.com"); !slices.Equal(claimKeys(claims), []string{f.surv.ID + "/beta.com/verified"}) {
		t.Errorf("ListClaimsForDomain(beta.com) = %v", claimKeys(claims))
	}
	if got := snap.Conns[f.surv.ID]; len(got) != 2 {
		t.Errorf("connections of the surviving parent = %+v", got)
	}
	if c, err := s.GetConnection(ctx, f.conn.ID); err != nil || c.ParentID != f.surv.ID || c.ClientSecret != "sec" {
		t.Errorf("moved connection = %+v, %v", c, err)
	}
	if got := snap.Conns[f.inc.ID]; len(got) != 0 {
		t.Errorf("connections left under the incoming parent = %+v", got)
	}

	// Once only.
	_, err = s.ApplyMerge(ctx, f.proposal.ID, at.Add(time.Minute))
	wantErr(t, "ApplyMerge twice", err, store.ErrMergeConflict)
	_, err = s.UpdateMergeProposal(ctx, f.proposal.ID, func(p *store.MergeProposal) error { p.Status = store.MergeWithdrawn; return nil })
	wantErr(t, "UpdateMergeProposal after apply", err, store.ErrMergeConflict)
	f.wantUnchanged(t, snap)
	_, err = s.ApplyMerge(ctx, "nope", at)
	wantErr(t, "ApplyMerge(unknown)", err, store.ErrNotFound)
}

// Every reason to refuse a merge is found before anything is written.
func testMergeConflict(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	f := newMergeFixture(t, newBackend)
	s := f.s
	refused := func(what string) {
		t.Helper()
		before := f.snapshot(t)
		_, err := s.ApplyMerge(ctx, f.proposal.ID, f.c.Now())
		wantErr(t, what, err, store.ErrMergeConflict)
		f.wantUnchanged(t, before)
	}
	refused("ApplyMerge without approvals")
	_, err := s.UpdateMergeProposal(ctx, f.proposal.ID, func(p *store.MergeProposal) error { p.SurvivingApprove = "admin@acme.com"; return nil })
	must(t, "approve one side", err)
	refused("ApplyMerge approved by one side")
	f.approve(t)

	// The surviving parent's own (pending) claim on a domain the incoming
	// parent verified later.
	addClaim(t, s, f.surv.ID, "Gamma.com")
	addClaim(t, s, f.inc.ID, "gamma.com")
	_, err = s.VerifyDomainClaim(ctx, f.inc.ID, "gamma.com", f.c.Now())
	must(t, "VerifyDomainClaim", err)
	refused("ApplyMerge with an overlapping domain claim")
	must(t, "DeleteDomainClaim", s.DeleteDomainClaim(ctx, f.surv.ID, "gamma.com"))

	// An org that left the incoming parent since the proposal (a merge into
	// a third parent org, which also takes the incoming verified domains).
	other := mkParent(t, s, "Other")
	side := &store.MergeProposal{SurvivingParent: other.ID, IncomingParent: f.inc.ID, OrgIDs: []string{f.b2.ID},
		SurvivingApprove: "x", IncomingApprove: "y"}
	must(t, "CreateMergeProposal", s.CreateMergeProposal(ctx, side))
	_, err = s.ApplyMerge(ctx, side.ID, f.c.Now())
	must(t, "ApplyMerge of the side proposal", err)
	refused("ApplyMerge of an org that moved away")
	_, err = s.UpdateMergeProposal(ctx, f.proposal.ID, func(p *store.MergeProposal) error { p.OrgIDs = []string{f.b1.ID}; return nil })
	must(t, "UpdateMergeProposal OrgIDs", err)

	// Expired, then declined.
	f.c.Advance(8 * 24 * time.Hour)
	refused("ApplyMerge after expiry")
	f.c.Advance(-8 * 24 * time.Hour)
	_, err = s.UpdateMergeProposal(ctx, f.proposal.ID, func(p *store.MergeProposal) error { p.Status = store.MergeDeclined; return nil })
	must(t, "decline", err)
	refused("ApplyMerge of a declined proposal")
	_, err = s.UpdateMergeProposal(ctx, f.proposal.ID, func(p *store.MergeProposal) error { p.Status = store.MergeProposed; return nil })
	must(t, "re-propose", err)

	// With every obstacle gone it applies.
	_, err = s.ApplyMerge(ctx, f.proposal.ID, f.c.Now())
	must(t, "ApplyMerge", err)
	if o, _ := s.GetOrg(ctx, f.b1.ID); o == nil || o.ParentID != f.surv.ID {
		t.Errorf("b1 after the merge = %+v", o)
	}
	wantCapture(t, s, "beta.com", other.ID)
}

// Concurrent ApplyMerge calls of one proposal apply it exactly once.
func testMergeApplyRace(t *testing.T, newBackend Factory) {
	ctx := t.Context()
	f := newMergeFixture(t, newBackend)
	f.approve(t)
	errs := race(10, func(i int) error {
		_, err := f.s.ApplyMerge(ctx, f.proposal.ID, f.c.Now().Add(time.Duration(i)*time.Second))
		return err
	})
	winner := oneWinner(t, errs, store.ErrMergeConflict)
	snap := f.snapshot(t)
	if !snap.Proposal.DecidedAt.Equal(f.c.Now().Add(time.Duration(winner) * time.Second)) {
		t.Errorf("DecidedAt = %v, the winner was goroutine %d", snap.Proposal.DecidedAt, winner)
	}
	if got := orgSlugs(snap.Orgs[f.surv.ID]); !slices.Equal(got, []string{"a", "b1", "b2"}) {
		t.Errorf("orgs of the surviving parent = %v", got)
	}
	if got := claimKeys(snap.Claims[f.surv.ID]); !slices.Equal(got, sorted(f.surv.ID+"/acme.com/verified", f.surv.ID+"/beta.com/verified")) {
		t.Errorf("claims of the surviving parent = %v", got)
	}
	if n := len(snap.Conns[f.surv.ID]); n != 2 {
		t.Errorf("%d connections under the surviving parent, want 2", n)
	}
	if snap.Capture["beta.com"] != f.surv.ID {
		t.Errorf("beta.com owned by %q after merge", snap.Capture["beta.com"])
	}
}

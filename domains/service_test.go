package domains

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/dnstest"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/bolt"
)

type fixture struct {
	svc     *Service
	dns     *dnstest.Server
	st      *store.Store
	acme    string // parent org IDs
	rival   string
	now     time.Time
	mu      sync.Mutex
	audited []store.AuditEvent
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	b, err := bolt.Open(filepath.Join(t.TempDir(), "d.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	f := &fixture{st: store.New(b), dns: dnstest.Start(t), now: time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)}
	ctx := context.Background()
	for _, id := range []*string{&f.acme, &f.rival} {
		p := &store.ParentOrg{Name: "p"}
		if err := f.st.CreateParentOrg(ctx, p); err != nil {
			t.Fatal(err)
		}
		*id = p.ID
	}
	f.svc = &Service{Store: f.st, Resolver: Resolver{Server: f.dns.Addr, Timeout: 2 * time.Second},
		Now: func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now },
		Audit: func(_ context.Context, e *store.AuditEvent) {
			f.mu.Lock()
			f.audited = append(f.audited, *e)
			f.mu.Unlock()
		}}
	return f
}

func (f *fixture) advance(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }

func (f *fixture) lastAudit(t *testing.T) store.AuditEvent {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.audited) == 0 {
		t.Fatal("no audit event")
	}
	return f.audited[len(f.audited)-1]
}

func code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestAddPublishVerify(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d, err := f.svc.Add(ctx, f.acme, "Acme.COM.", "owner@acme.com")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "acme.com" || d.Status != store.DomainPending || d.TXTName != "_ssogate-challenge.acme.com" ||
		!strings.HasPrefix(d.TXTValue, "ssogate-domain-verification=") || len(d.TXTValue) < len(TXTPrefix)+26 {
		t.Fatalf("added %+v", d)
	}
	if e := f.lastAudit(t); e.Action != "domain.add" || e.Target != "acme.com" {
		t.Fatalf("audit %+v", e)
	}
	// Nothing published yet: still pending, with the DNS error kept.
	d2, err := f.svc.Verify(ctx, f.acme, "acme.com", "owner@acme.com")
	if err != nil || d2.Status != store.DomainPending || !strings.Contains(d2.LastError, "no matching TXT record") || d2.LastCheckedAt.IsZero() {
		t.Fatalf("before publishing: %+v %v", d2, err)
	}
	// A wrong token among other records: still pending.
	f.dns.SetTXT(d.TXTName, "v=spf1 -all", "ssogate-domain-verification=WRONG")
	d3, _ := f.svc.Verify(ctx, f.acme, "acme.com", "owner@acme.com")
	if d3.Status != store.DomainPending || !strings.Contains(d3.LastError, "none with this claim's value") {
		t.Fatalf("wrong token: %+v", d3)
	}
	if _, ok, _ := f.st.CaptureLookup(ctx, "acme.com"); ok {
		t.Fatal("captured before verification")
	}
	// The right value, split into two strings, among other records.
	v := d.TXTValue
	f.dns.SetTXT(d.TXTName, "google-site-verification=x", v[:20]+"|"+v[20:])
	d4, err := f.svc.Verify(ctx, f.acme, "acme.com", "owner@acme.com")
	if err != nil || d4.Status != store.DomainVerified || d4.VerifiedAt.IsZero() {
		t.Fatalf("after publishing: %+v %v", d4, err)
	}
	if e := f.lastAudit(t); e.Action != "domain.verify" || e.Outcome != "success" {
		t.Fatalf("audit %+v", e)
	}
	if p, ok, err := f.st.CaptureLookup(ctx, "acme.com"); err != nil || !ok || p != f.acme {
		t.Fatalf("capture = %q %v %v", p, ok, err)
	}
	// Capture is exact: a subdomain is not captured by its parent domain.
	if _, ok, _ := f.st.CaptureLookup(ctx, "eng.acme.com"); ok {
		t.Fatal("eng.acme.com captured without its own verification")
	}
}

func TestSecondParentOrgCannotTakeDomain(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mine, err := f.svc.Add(ctx, f.acme, "acme.com", "a")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := f.svc.Add(ctx, f.rival, "acme.com", "r") // pending claims may coexist
	if err != nil {
		t.Fatal(err)
	}
	f.dns.SetTXT(mine.TXTName, mine.TXTValue, theirs.TXTValue) // both published
	if d, err := f.svc.Verify(ctx, f.acme, "acme.com", "a"); err != nil || d.Status != store.DomainVerified {
		t.Fatalf("first verify: %+v %v", d, err)
	}
	if _, err := f.svc.Verify(ctx, f.rival, "acme.com", "r"); code(err) != "domain_claimed" {
		t.Fatalf("second parent verify: %v, want domain_claimed", err)
	}
	if _, err := f.svc.Add(ctx, f.rival, "ACME.com", "r"); code(err) != "domain_claimed" {
		t.Fatalf("adding a verified domain: %v, want domain_claimed", err)
	}
	if _, err := f.svc.Add(ctx, f.acme, "acme.com", "a"); code(err) != "domain_exists" {
		t.Fatalf("adding twice: %v, want domain_exists", err)
	}
	if p, _, _ := f.st.CaptureLookup(ctx, "acme.com"); p != f.acme {
		t.Fatalf("owner = %q", p)
	}
	// Deleting releases the capture; then the rival can verify.
	if err := f.svc.Delete(ctx, f.acme, "acme.com", "a"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := f.st.CaptureLookup(ctx, "acme.com"); ok {
		t.Fatal("still captured after delete")
	}
	if d, err := f.svc.Verify(ctx, f.rival, "acme.com", "r"); err != nil || d.Status != store.DomainVerified {
		t.Fatalf("rival after release: %+v %v", d, err)
	}
}

func TestBackgroundWorkerAndExpiry(t *testing.T) {
	f := newFixture(t)
	f.svc.PendingTimeout = 48 * time.Hour
	ctx := context.Background()
	a, _ := f.svc.Add(ctx, f.acme, "acme.com", "a")
	b, _ := f.svc.Add(ctx, f.acme, "beta.com", "a")
	f.dns.SetTXT(a.TXTName, a.TXTValue)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { f.svc.Run(runCtx, 20*time.Millisecond); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, _ := f.st.GetDomainClaim(ctx, f.acme, "acme.com")
		if d.Status == store.DomainVerified {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker did not verify a published domain")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	// The worker may have stopped mid-pass: one explicit pass makes the
	// rest deterministic.
	if _, err := f.svc.CheckPending(ctx); err != nil {
		t.Fatal(err)
	}
	// beta.com never published: pending until the timeout, then failed.
	if d, _ := f.st.GetDomainClaim(ctx, f.acme, "beta.com"); d.Status != store.DomainPending || d.LastError == "" {
		t.Fatalf("beta before timeout: %+v", d)
	}
	f.advance(49 * time.Hour)
	f.dns.Fail(true)
	if _, err := f.svc.CheckPending(ctx); err != nil {
		t.Fatal(err)
	}
	d, _ := f.st.GetDomainClaim(ctx, f.acme, "beta.com")
	if d.Status != store.DomainFailed || !strings.Contains(d.LastError, "SERVFAIL") {
		t.Fatalf("beta after timeout: %+v", d)
	}
	// A failed claim can still verify when the owner presses the button.
	f.dns.Fail(false)
	f.dns.SetTXT(b.TXTName, b.TXTValue)
	if d, err := f.svc.Verify(ctx, f.acme, "beta.com", "a"); err != nil || d.Status != store.DomainVerified {
		t.Fatalf("failed claim re-verified: %+v %v", d, err)
	}
}

func TestAddRefusesBadDomains(t *testing.T) {
	f := newFixture(t)
	f.svc.Blocked = map[string]bool{"partner.example": true}
	for raw, want := range map[string]string{
		"gmail.com": "domain_consumer", "co.uk": "domain_public_suffix", "*.acme.com": "domain_wildcard",
		"10.0.0.1": "domain_ip", "": "domain_empty", "partner.example": "domain_consumer", "localhost": "domain_single_label",
	} {
		if _, err := f.svc.Add(context.Background(), f.acme, raw, "a"); code(err) != want {
			t.Errorf("Add(%q) = %v, want %s", raw, err, want)
		}
	}
	if list, _ := f.st.ListDomainClaims(context.Background(), f.acme); len(list) != 0 {
		t.Fatalf("refused domains were stored: %+v", list)
	}
}

package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/bolt"
)

const testBase = "/.ssogate/scim/v2"

// recorder collects the user IDs a hook was called with.
type recorder struct {
	mu    sync.Mutex
	calls []string
	fail  atomic.Bool
}

func (r *recorder) fn(_ context.Context, userID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, userID)
	if r.fail.Load() {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// take returns and forgets the calls so far.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

// tenantFixture is one parent org with one org, a verified domain and a token.
type tenantFixture struct {
	parent *store.ParentOrg
	org    *store.Org
	token  string
}

type env struct {
	t       testing.TB
	st      *store.Store
	probe   *probeBackend
	srv     *httptest.Server
	a, b    tenantFixture
	revoked recorder
	refresh recorder
	groups  recorder // OnGroupsChanged, one entry per user
	audits  atomic.Int64
}

// newEnv starts a SCIM server over a fresh bolt store with two tenants:
// acme (acme.com) and beta (beta.io).
func newEnv(t testing.TB, setup ...func(*env)) *env {
	t.Helper()
	b, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, probe: &probeBackend{Backend: b}}
	e.st = store.New(e.probe)
	t.Cleanup(func() { _ = e.st.Close() })
	e.a = e.addTenant("Acme", "acme", "acme.com", "okta")
	e.b = e.addTenant("Beta", "beta", "beta.io", "entra")
	for _, fn := range setup {
		fn(e)
	}
	var log *zap.Logger
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt, zaptest.Level(zap.WarnLevel))
	}
	h, err := NewHandler(Config{
		Store:   e.st,
		Revoke:  e.revoked.fn,
		Refresh: e.refresh.fn,
		OnGroupsChanged: func(ctx context.Context, orgID string, userIDs []string) error {
			for _, id := range userIDs {
				if err := e.groups.fn(ctx, id); err != nil {
					return err
				}
			}
			return nil
		},
		Audit: func(ctx context.Context, ev *store.AuditEvent) {
			e.audits.Add(1)
			if err := e.st.AppendAudit(ctx, ev); err != nil {
				t.Errorf("audit: %v", err)
			}
		},
		Logger:   log,
		BasePath: testBase,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) addTenant(name, slug, domain, tokenName string) tenantFixture {
	e.t.Helper()
	ctx := context.Background()
	p := &store.ParentOrg{Name: name}
	must(e.t, e.st.CreateParentOrg(ctx, p))
	o := &store.Org{Slug: slug, Name: name, ParentID: p.ID}
	must(e.t, e.st.CreateOrg(ctx, o))
	must(e.t, e.st.AddDomainClaim(ctx, &store.Domain{Name: domain, ParentID: p.ID, Status: store.DomainVerified}))
	tok := store.NewSecret("scim_")
	must(e.t, e.st.CreateSecret(ctx, &store.SecretRecord{Kind: store.SecretSCIM, Hash: store.HashSecret(tok), Name: tokenName, OrgID: o.ID}))
	return tenantFixture{parent: p, org: o, token: tok}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// response is a decoded SCIM answer.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// do sends a request with token to path (relative to the SCIM base).
func (e *env) do(method, path, token string, body any) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		must(e.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+testBase+path, rd)
	must(e.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	res, err := e.srv.Client().Do(req)
	must(e.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	must(e.t, err)
	out := response{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			e.t.Fatalf("%s %s: response is not a JSON object: %v\n%s", method, path, err, raw)
		}
	}
	return out
}

// counts is the number of users and memberships in the store.
type counts struct{ users, membersA, membersB, groupsA, groupsB int }

func (e *env) counts() counts {
	e.t.Helper()
	ctx := context.Background()
	us, err := e.st.ListUsers(ctx)
	must(e.t, err)
	ma, err := e.st.ListOrgMembers(ctx, e.a.org.ID)
	must(e.t, err)
	mb, err := e.st.ListOrgMembers(ctx, e.b.org.ID)
	must(e.t, err)
	ga, err := e.st.ListGroups(ctx, e.a.org.ID)
	must(e.t, err)
	gb, err := e.st.ListGroups(ctx, e.b.org.ID)
	must(e.t, err)
	return counts{len(us), len(ma), len(mb), len(ga), len(gb)}
}

// userBody is a minimal Okta-style User.
func userBody(userName string, extra map[string]any) map[string]any {
	b := map[string]any{
		"schemas":  []string{uriUser},
		"userName": userName,
		"name":     map[string]any{"givenName": "Test", "familyName": "User"},
		"emails":   []any{map[string]any{"primary": true, "value": userName, "type": "work"}},
		"active":   true,
	}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

// createUser provisions a user through the API and returns its id.
func (e *env) createUser(token, userName string) string {
	e.t.Helper()
	res := e.do("POST", "/Users", token, userBody(userName, nil))
	if res.status != http.StatusCreated {
		e.t.Fatalf("create %s: %d %s", userName, res.status, res.raw)
	}
	return res.body["id"].(string)
}

// errorType checks a SCIM error response and returns its scimType.
func errorType(t testing.TB, res response, status int) string {
	t.Helper()
	if res.status != status {
		t.Fatalf("status %d, want %d: %s", res.status, status, res.raw)
	}
	if !slices.Equal(anyStrings(res.body["schemas"]), []string{"urn:ietf:params:scim:api:messages:2.0:Error"}) {
		t.Fatalf("not a SCIM error: %s", res.raw)
	}
	if res.body["status"] != strconv.Itoa(status) {
		t.Fatalf("status field %v, want %q", res.body["status"], strconv.Itoa(status))
	}
	typ, _ := res.body["scimType"].(string)
	return typ
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range asList(v) {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// probeBackend wraps a backend to count reads and fail chosen writes.
type probeBackend struct {
	store.Backend
	reads     atomic.Int64
	failPuts  atomic.Value // string key prefix whose Put fails ("" = none)
	failCount atomic.Int64
}

func (p *probeBackend) Get(ctx context.Context, key string) ([]byte, error) {
	p.reads.Add(1)
	return p.Backend.Get(ctx, key)
}

func (p *probeBackend) View(ctx context.Context, fn func(tx store.Reader) error) error {
	return p.Backend.View(ctx, func(tx store.Reader) error { return fn(countingReader{tx, p}) })
}

func (p *probeBackend) Update(ctx context.Context, fn func(tx store.Txn) error) error {
	return p.Backend.Update(ctx, func(tx store.Txn) error { return fn(failingTxn{tx, p}) })
}

type countingReader struct {
	store.Reader
	p *probeBackend
}

func (c countingReader) Get(key string) ([]byte, error) {
	c.p.reads.Add(1)
	return c.Reader.Get(key)
}

func (c countingReader) IndexRange(index, after string, limit int) ([]string, error) {
	c.p.reads.Add(1)
	return c.Reader.IndexRange(index, after, limit)
}

type failingTxn struct {
	store.Txn
	p *probeBackend
}

var errInjected = io.ErrClosedPipe

func (f failingTxn) Put(key string, value []byte, ttl time.Duration) error {
	if pre, _ := f.p.failPuts.Load().(string); pre != "" && strings.HasPrefix(key, pre) {
		f.p.failCount.Add(1)
		return errInjected
	}
	return f.Txn.Put(key, value, ttl)
}

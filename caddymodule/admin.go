package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"

	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/store"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// running is the ssogate app of the active config, for the admin routes
// on Caddy's admin endpoint (local-only by default).
var running struct {
	sync.RWMutex
	app *App
}

// adminAPI adds /ssogate/… routes to Caddy's admin API, which is how the
// `ssogate admin` commands reach a running server (bolt file held or not).
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "admin.api.ssogate", New: func() caddy.Module { return new(adminAPI) }}
}

// Routes returns the admin routes. Lists answer GET (filters in the
// query); changes answer POST with a JSON body. Every answer is JSON; errors
// are Caddy's {"error": "…"} with an HTTP status.
func (adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/ssogate/bootstrap", Handler: adminRoute(http.MethodPost, (*App).adminBootstrap)},
		{Pattern: "/ssogate/parents", Handler: adminRoute(http.MethodGet, (*App).adminListParents)},
		{Pattern: "/ssogate/orgs", Handler: adminRoute(http.MethodPost, (*App).adminCreateOrg)},
		{Pattern: "/ssogate/api-keys", Handler: adminRoute("", (*App).adminAPIKeys)},
		{Pattern: "/ssogate/api-keys/revoke", Handler: adminRoute(http.MethodPost, (*App).adminRevokeAPIKey)},
		{Pattern: "/ssogate/domains", Handler: adminRoute(http.MethodGet, (*App).adminListDomains)},
		{Pattern: "/ssogate/sessions/revoke", Handler: adminRoute(http.MethodPost, (*App).adminRevokeSessions)},
		{Pattern: "/ssogate/merge-proposals", Handler: adminRoute(http.MethodPost, (*App).adminProposeMerge)},
	}
}

// adminRoute wraps an operation of the running app as an admin route: it
// checks the method ("" takes GET and POST), finds the running app, and
// writes the operation's answer as JSON. Errors that are not already a
// caddy.APIError become one (see adminError).
func adminRoute(method string, op func(*App, http.ResponseWriter, *http.Request) (any, error)) caddy.AdminHandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if (method == "" && r.Method != http.MethodGet && r.Method != http.MethodPost) || (method != "" && r.Method != method) {
			want := method
			if want == "" {
				want = "GET or POST"
			}
			return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("use %s", want)}
		}
		running.RLock()
		app := running.app
		running.RUnlock()
		if app == nil {
			return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("ssogate is not running in this Caddy")}
		}
		if !app.Healthy() {
			return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("the ssogate store is unreachable")}
		}
		res, err := op(app, w, r)
		if err != nil {
			return app.adminError(err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		return json.NewEncoder(w).Encode(res)
	}
}

// adminError turns an operation's error into the caddy.APIError the admin
// endpoint answers (Caddy checks the type without unwrapping).
func (a *App) adminError(err error) caddy.APIError {
	var apiErr caddy.APIError
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded):
		a.storeFailed(err)
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("the ssogate store is unreachable: %w", err)}
	case errors.Is(err, store.ErrConflict):
		return caddy.APIError{HTTPStatus: http.StatusConflict, Err: fmt.Errorf("a concurrent change won; try again: %w", err)}
	}
	return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
}

// decodeAdmin reads an admin route's JSON body strictly (size limit, no
// unknown fields).
func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("bad request body: %w", err)}
	}
	return nil
}

// BootstrapRequest creates a parent org, its first org and primary owner.
type BootstrapRequest struct {
	Parent string `json:"parent"`
	Org    string `json:"org"`
	Owner  string `json:"owner"`
}

// BootstrapResult is what bootstrap answers (the API key and link once).
type BootstrapResult struct {
	ParentID string `json:"parent_id"`
	OrgID    string `json:"org_id"`
	APIKey   string `json:"api_key"`
	LoginURL string `json:"login_url"`
}

func (a *App) adminBootstrap(w http.ResponseWriter, r *http.Request) (any, error) {
	var in BootstrapRequest
	if err := decodeAdmin(w, r, &in); err != nil {
		return nil, err
	}
	return a.bootstrap(r.Context(), in)
}

// bootstrap creates a parent org with one org and its primary owner, an
// admin API key for the parent org, and a one-time sign-in link.
func (a *App) bootstrap(ctx context.Context, in BootstrapRequest) (*BootstrapResult, error) {
	bad := func(format string, args ...any) error {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf(format, args...)}
	}
	in.Parent, in.Org = strings.TrimSpace(in.Parent), strings.ToLower(strings.TrimSpace(in.Org))
	if in.Parent == "" || len(in.Parent) > 100 {
		return nil, bad("--parent is required (the organization's name, at most 100 characters)")
	}
	if !policy.ValidSlug(in.Org) {
		return nil, bad("--org %q must be a slug: lower-case letters, digits and hyphens", in.Org)
	}
	email, _, err := policy.NormalizeEmail(in.Owner)
	if err != nil {
		return nil, bad("--owner: %v", err)
	}
	if _, err := a.store.GetOrgBySlug(ctx, in.Org); err == nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusConflict, Err: fmt.Errorf("an org with slug %q exists already", in.Org)}
	}
	p := &store.ParentOrg{Name: in.Parent}
	if err := a.store.CreateParentOrg(ctx, p); err != nil {
		return nil, err
	}
	o := &store.Org{Slug: in.Org, Name: in.Parent, ParentID: p.ID}
	if err := a.store.CreateOrg(ctx, o); err != nil {
		return nil, err
	}
	u, err := a.store.GetUserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		u = &store.User{Email: email, CreatedBy: "bootstrap"}
		err = a.store.CreateUser(ctx, u)
	}
	if err != nil {
		return nil, err
	}
	if err := a.store.PutMembership(ctx, &store.Membership{OrgID: o.ID, UserID: u.ID, Role: store.RolePrimaryOwner,
		Status: store.MemberActive, Source: "bootstrap", CreatedAt: a.store.Now().UTC()}); err != nil {
		return nil, err
	}
	key := store.NewSecret("ssogate_key_")
	if err := a.store.CreateSecret(ctx, &store.SecretRecord{Kind: store.SecretAPI, Hash: store.HashSecret(key), Name: "bootstrap", ParentID: p.ID}); err != nil {
		return nil, err
	}
	res := &BootstrapResult{ParentID: p.ID, OrgID: o.ID, APIKey: key}
	if site := a.firstSite(); site != "" {
		tok := newLinkToken()
		now := a.store.Now()
		if err := a.store.PutOneTimeToken(ctx, &store.OneTimeToken{Hash: hashKey(tok), Purpose: "invite", Email: email, ReturnTo: "/",
			CreatedAt: now, ExpiresAt: now.Add(inviteLinkTTL)}); err != nil {
			return nil, err
		}
		res.LoginURL = site + "/magic/" + tok
	}
	a.audit(nil, &store.AuditEvent{ParentID: p.ID, OrgID: o.ID, Actor: "operator", Action: "bootstrap", Target: email, Outcome: "success"})
	return res, nil
}

// sites records the origin and base path of every handler using this app,
// for links made outside a request (bootstrap).
func (a *App) addSite(originAndBase string) {
	a.sitesMu.Lock()
	defer a.sitesMu.Unlock()
	for _, s := range a.sites {
		if s == originAndBase {
			return
		}
	}
	a.sites = append(a.sites, originAndBase)
}

func (a *App) firstSite() string {
	a.sitesMu.Lock()
	defer a.sitesMu.Unlock()
	if len(a.sites) == 0 {
		return ""
	}
	return a.sites[0]
}

var _ caddy.AdminRouter = adminAPI{}

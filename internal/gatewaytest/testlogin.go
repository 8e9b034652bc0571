package gatewaytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/ssogate/ssogate/caddymodule"
	"github.com/ssogate/ssogate/session"
	"github.com/ssogate/ssogate/store"
)

func init() {
	caddy.RegisterModule(TestLogin{})
	httpcaddyfile.RegisterHandlerDirective("ssogate_testlogin", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		h.Next()
		return &TestLogin{}, nil
	})
	httpcaddyfile.RegisterDirectiveOrder("ssogate_testlogin", httpcaddyfile.Before, "basic_auth")
}

// TestLogin signs a user in directly, for tests only:
// POST ?email=&org=&role=&parent= creates what is missing and answers
// {"cookie": …, "user_id": …, "org_id": …, "parent_id": …}.
type TestLogin struct {
	app *caddymodule.App
}

// CaddyModule returns the Caddy module information.
func (TestLogin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.ssogate_testlogin", New: func() caddy.Module { return new(TestLogin) }}
}

// Provision finds the ssogate app.
func (t *TestLogin) Provision(ctx caddy.Context) error {
	a, err := ctx.App("ssogate")
	if err != nil {
		return err
	}
	t.app = a.(*caddymodule.App)
	return nil
}

// UnmarshalCaddyfile takes no options.
func (t *TestLogin) UnmarshalCaddyfile(d *caddyfile.Dispenser) error { return nil }

// LoginResult is what the test login answers.
type LoginResult struct {
	Cookie   string `json:"cookie"`
	UserID   string `json:"user_id"`
	OrgID    string `json:"org_id"`
	ParentID string `json:"parent_id"`
	APIKey   string `json:"api_key,omitempty"`
}

func (t *TestLogin) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	q := r.URL.Query()
	res, err := SignIn(r, t.app, q.Get("email"), q.Get("org"), store.Role(q.Get("role")), q.Get("under"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return nil
	}
	if q.Get("apikey") != "" && res.ParentID != "" {
		secret := store.NewSecret("sgk_")
		rec := &store.SecretRecord{Kind: "api", Hash: store.HashSecret(secret), Name: "test", ParentID: res.ParentID}
		if err := t.app.Store().CreateSecret(r.Context(), rec); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return nil
		}
		res.APIKey = secret
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(res)
}

// SignIn makes sure the user, org (slug, under a parent org named after
// it, or under the parent org of the org named by under) and membership
// exist, then issues a session.
func SignIn(r *http.Request, app *caddymodule.App, email, orgSlug string, role store.Role, under string) (*LoginResult, error) {
	ctx := r.Context()
	st := app.Store()
	if role == "" {
		role = store.RoleMember
	}
	u, err := st.GetUserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		u = &store.User{Email: email, CreatedBy: "test"}
		err = st.CreateUser(ctx, u)
	}
	if err != nil {
		return nil, fmt.Errorf("user: %w", err)
	}
	res := &LoginResult{UserID: u.ID}
	if orgSlug != "" {
		o, err := st.GetOrgBySlug(ctx, orgSlug)
		if errors.Is(err, store.ErrNotFound) {
			var parentID string
			if under != "" {
				other, err := st.GetOrgBySlug(ctx, under)
				if err != nil {
					return nil, fmt.Errorf("under: %w", err)
				}
				parentID = other.ParentID
			} else {
				p := &store.ParentOrg{Name: orgSlug}
				if err := st.CreateParentOrg(ctx, p); err != nil {
					return nil, fmt.Errorf("parent: %w", err)
				}
				parentID = p.ID
			}
			o = &store.Org{Slug: orgSlug, Name: orgSlug, ParentID: parentID}
			err = st.CreateOrg(ctx, o)
		}
		if err != nil {
			return nil, fmt.Errorf("org: %w", err)
		}
		if err := st.PutMembership(ctx, &store.Membership{OrgID: o.ID, UserID: u.ID, Role: role, Status: store.MemberActive, Source: "test"}); err != nil {
			return nil, fmt.Errorf("membership: %w", err)
		}
		res.OrgID, res.ParentID = o.ID, o.ParentID
	}
	cookie, _, err := app.Sessions().Issue(ctx, u, session.IssueMeta{Method: "test", ParentID: res.ParentID, RemoteIP: r.RemoteAddr})
	if err != nil {
		return nil, err
	}
	res.Cookie = cookie
	return res, nil
}

var (
	_ caddyhttp.MiddlewareHandler = (*TestLogin)(nil)
	_ caddy.Provisioner           = (*TestLogin)(nil)
)

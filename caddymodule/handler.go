package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is `http.handlers.ssogate`: it serves ssogate's own routes under
// base_path and guards every other request, passing only signed-in users
// upstream with their identity attached.
type Handler struct {
	// SiteURL is the public origin of this site, e.g. https://app.example.com.
	// Redirects, cookies, JWT audiences and IdP callback URLs are built
	// from it, never from the request's Host. Required.
	SiteURL string `json:"site_url,omitempty"`
	// BasePath is where ssogate's own routes live. Default: /.ssogate.
	BasePath string `json:"base_path,omitempty"`
	// Org, if set, admits only active members of the org with this slug.
	Org string `json:"org,omitempty"`

	app        *App
	logger     *zap.Logger
	origin     string // scheme://host[:port], no trailing slash
	secure     bool
	cookieName string
	// authCookieName holds the browser key that binds pending sign-ins.
	authCookieName string
	routes         *http.ServeMux
	conns          *connectorCache
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.ssogate", New: func() caddy.Module { return new(Handler) }}
}

// DefaultBasePath is where ssogate's routes live unless configured.
const DefaultBasePath = "/.ssogate"

// Provision connects the handler to the ssogate app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.BasePath == "" {
		h.BasePath = DefaultBasePath
	}
	if err := h.Validate(); err != nil {
		return err
	}
	appIface, err := ctx.App("ssogate")
	if err != nil {
		return fmt.Errorf("ssogate: loading app: %w", err)
	}
	h.provision(appIface.(*App))
	return nil
}

func (h *Handler) provision(app *App) {
	h.app = app
	if h.logger == nil {
		h.logger = zap.NewNop()
	}
	u, _ := url.Parse(h.SiteURL)
	h.origin = u.Scheme + "://" + u.Host
	h.secure = u.Scheme == "https"
	h.cookieName = "ssogate_session"
	if h.secure {
		// __Host- cookies are host-only, Path=/ and Secure: no subdomain
		// can set or read them.
		h.cookieName = "__Host-ssogate_session"
	}
	h.authCookieName = strings.Replace(h.cookieName, "session", "auth", 1)
	h.conns = &connectorCache{}
	if app.sitesMu != nil {
		app.addSite(h.origin + h.BasePath)
	}
	h.routes = h.buildRoutes()
}

// Validate checks the handler configuration.
func (h *Handler) Validate() error {
	if h.SiteURL == "" {
		return errors.New("ssogate: site_url is required: the public URL of this site, e.g. site_url https://app.example.com")
	}
	u, err := url.Parse(h.SiteURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("ssogate: site_url %q must be an origin like https://app.example.com (no path, query or credentials)", h.SiteURL)
	}
	if h.BasePath != "" && (!strings.HasPrefix(h.BasePath, "/") || strings.HasSuffix(h.BasePath, "/") || strings.ContainsAny(h.BasePath, "?#* ")) {
		return fmt.Errorf("ssogate: base_path %q must start with / and not end with /", h.BasePath)
	}
	if h.Org != "" && strings.ToLower(h.Org) != h.Org {
		return fmt.Errorf("ssogate: org %q: slugs are lower-case", h.Org)
	}
	return nil
}

// ServeHTTP strips spoofed identity headers, serves ssogate's routes, and
// guards everything else.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	stripIdentityHeaders(r.Header)
	p := r.URL.Path
	if strings.HasPrefix(p, h.BasePath) && (len(p) == len(h.BasePath) || p[len(h.BasePath)] == '/') {
		h.routes.ServeHTTP(w, r)
		return nil
	}
	return h.guard(w, r, next)
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

package caddymodule

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/session"
	"github.com/ssogate/ssogate/ui"
)

// guard passes signed-in requests upstream with identity attached.
func (h *Handler) guard(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	e, status := h.authenticate(r)
	switch status {
	case http.StatusOK:
	case http.StatusUnauthorized:
		h.app.metrics.guard.WithLabelValues("unauthenticated").Inc()
		h.unauthenticated(w, r, r.URL.RequestURI(), false)
		return nil
	case http.StatusForbidden:
		h.app.metrics.guard.WithLabelValues("forbidden").Inc()
		return h.forbidden(w, r)
	default:
		h.app.metrics.guard.WithLabelValues("unavailable").Inc()
		return h.unavailable(w, r)
	}
	if err := h.attachIdentity(r, r.Header, e); err != nil {
		h.app.metrics.guard.WithLabelValues("unavailable").Inc()
		h.logger.Error("signing identity jwt", zap.Error(err))
		return h.unavailable(w, r)
	}
	return next.ServeHTTP(w, r)
}

// authenticate resolves the request's session: 200 with an entry, 401
// (none), 403 (not a member of the required org) or 503 (store down).
func (h *Handler) authenticate(r *http.Request) (*session.Entry, int) {
	if !h.app.Healthy() {
		return nil, http.StatusServiceUnavailable
	}
	cookie := cookieValue(r, h.cookieName)
	if cookie == "" {
		return nil, http.StatusUnauthorized
	}
	e, err := h.app.sessions.Validate(r.Context(), cookie)
	if errors.Is(err, session.ErrNoSession) {
		return nil, http.StatusUnauthorized
	}
	if err != nil {
		h.app.storeFailed(err)
		return nil, http.StatusServiceUnavailable
	}
	if h.Org != "" && e.Identity.RoleIn(h.Org) == "" {
		return e, http.StatusForbidden
	}
	return e, http.StatusOK
}

// attachIdentity sets the identity headers on hdr (the upstream request's
// or, for forward auth, the response's) and Caddy placeholders.
func (h *Handler) attachIdentity(r *http.Request, hdr http.Header, e *session.Entry) error {
	tok, err := h.app.sessions.JWTHeader(e, h.origin)
	if err != nil {
		return err
	}
	// The slices are shared by every request of this session: nothing
	// downstream appends to header values in place.
	hdr[hdrEmail] = e.EmailHeader
	hdr[hdrUser] = e.UserHeader
	hdr[hdrGroups] = e.GroupsHeader
	hdr[hdrOrgs] = e.OrgsHeader
	hdr[hdrJWT] = tok
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", e.Placeholders[0])
		repl.Set("http.auth.user.email", e.Placeholders[1])
		repl.Set("http.auth.user.groups", e.Placeholders[2])
		repl.Set("http.auth.user.orgs", e.Placeholders[3])
	}
	return nil
}

// unauthenticated sends browsers to sign in and tells API clients 401.
// storeDown answers a page request that failed on the store: the store is
// marked down (the gateway fails closed) and the 503 page is shown.
func (h *Handler) storeDown(w http.ResponseWriter, r *http.Request, err error) {
	h.app.storeFailed(err)
	_ = h.unavailable(w, r)
}

// absolute makes the redirect absolute (forward auth answers other proxies).
func (h *Handler) unauthenticated(w http.ResponseWriter, r *http.Request, returnTo string, absolute bool) {
	if !isBrowserNavigation(r) {
		writeJSONError(w, http.StatusUnauthorized, "unauthenticated", "sign-in required")
		return
	}
	loc := h.BasePath + "/login?return_to=" + url.QueryEscape(policy.SafeReturnTo(returnTo, h.origin))
	if absolute {
		loc = h.origin + loc
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, loc, http.StatusFound)
}

func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request) error {
	if !isBrowserNavigation(r) {
		writeJSONError(w, http.StatusForbidden, "forbidden", "you are not a member of the organization that owns this site")
		return nil
	}
	return ui.Render(w, http.StatusForbidden, "notice.html", ui.Page{
		Title: "No access", BasePath: h.BasePath,
		Message: "You are signed in, but your account is not a member of the organization that uses this site.",
		Detail:  "Ask an owner of the organization to add you, or sign in with another account.",
		LinkURL: h.BasePath + "/logout", LinkText: "Sign out",
	})
}

func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Retry-After", "5")
	if !isBrowserNavigation(r) {
		writeJSONError(w, http.StatusServiceUnavailable, "unavailable", "the sign-in service is temporarily unavailable")
		return nil
	}
	return ui.Render(w, http.StatusServiceUnavailable, "notice.html", ui.Page{
		Title: "Temporarily unavailable", BasePath: h.BasePath,
		Message: "Sign-in is temporarily unavailable. Please try again in a moment.",
	})
}

// isBrowserNavigation tells a page load (redirect to sign in) from an API
// call (401): GET/HEAD, not XHR, and not asking for JSON first.
func isBrowserNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("X-Requested-With") != "" {
		return false
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" && m != "navigate" {
		return false
	}
	accept := r.Header.Get("Accept")
	if strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html") {
		return false
	}
	return true
}

// cookieValue finds a cookie without allocating (r.Cookie parses all).
func cookieValue(r *http.Request, name string) string {
	for _, line := range r.Header["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			if len(part) > len(name) && part[len(name)] == '=' && part[:len(name)] == name {
				v := part[len(name)+1:]
				if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				return v
			}
		}
	}
	return ""
}

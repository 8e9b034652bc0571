package caddymodule

import (
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/ssogate/ssogate/connector"
	oidcconn "github.com/ssogate/ssogate/connector/oidc"
	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/provision"
	"github.com/ssogate/ssogate/session"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/ui"
)

const googleIssuer = "https://accounts.google.com"

// socialConnection describes a social provider as an OIDC connection.
func (h *Handler) socialConnection(name string) (*store.Connection, bool) {
	for _, p := range h.app.Social {
		if p.Name != name {
			continue
		}
		iss := p.Issuer
		if iss == "" && p.Name == "google" {
			iss = googleIssuer
		}
		return &store.Connection{ID: "social-" + p.Name, Type: store.ConnOIDC, Name: p.Name, Issuer: iss,
			ClientID: p.ClientID, ClientSecret: p.ClientSecret, HostedDomain: p.HostedDomain}, true
	}
	return nil, false
}

func (h *Handler) socialConnector(r *http.Request, conn *store.Connection, name string) (connector.Connector, error) {
	return h.conns.get(conn, func() (connector.Connector, error) {
		return oidcconn.New(r.Context(), conn, oidcconn.Config{RedirectURL: h.origin + h.BasePath + "/social/" + name + "/callback",
			HTTPClient: h.app.idpClient, HostedDomain: conn.HostedDomain})
	})
}

// serveSocialStart sends the browser to a social provider.
func (h *Handler) serveSocialStart(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	conn, ok := h.socialConnection(name)
	if !ok {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such sign-in provider")
		return
	}
	c, err := h.socialConnector(r, conn, name)
	if err != nil {
		h.logger.Error("social provider unavailable", zap.String("provider", name), zap.Error(err))
		_ = ui.Render(w, http.StatusBadGateway, "notice.html", ui.Page{Title: "Sign-in unavailable", BasePath: h.BasePath,
			Message: "This sign-in provider cannot be reached right now.", LinkURL: h.BasePath + "/login", LinkText: "Other ways to sign in"})
		return
	}
	key := h.browserKey(w, r)
	state := newLinkToken()
	begun, err := c.Begin(r.Context(), state, "")
	if err != nil {
		h.logger.Error("starting social sign-in", zap.String("provider", name), zap.Error(err))
		_ = h.unavailable(w, r)
		return
	}
	now := h.app.store.Now()
	p := &store.PendingAuth{ID: state, Provider: name, Nonce: begun.Nonce, PKCEVerifier: begun.PKCEVerifier,
		ReturnTo: policy.SafeReturnTo(r.URL.Query().Get("return_to"), h.origin), BrowserKey: hashKey(key), CreatedAt: now, ExpiresAt: now.Add(pendingTTL)}
	if err := h.app.store.PutPendingAuth(r.Context(), p); err != nil {
		h.storeDown(w, r, err)
		return
	}
	http.Redirect(w, r, begun.RedirectURL, http.StatusSeeOther)
}

// serveSocialCallback finishes a social sign-in. Emails on a domain whose
// parent org enforces SSO are refused: the organization's IdP decides who
// may use those accounts.
func (h *Handler) serveSocialCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("provider")
	conn, ok := h.socialConnection(name)
	if !ok {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such sign-in provider")
		return
	}
	refuse := func(email, reason string, cause error, msg string) {
		h.socialRefused(w, r, name, email, reason, cause, msg)
	}
	state := r.URL.Query().Get("state")
	p, err := h.app.store.PeekPendingAuth(ctx, state)
	if state == "" || errors.Is(err, store.ErrNotFound) {
		refuse("", "state", err, "This sign-in expired. Please start again.")
		return
	}
	if err != nil {
		h.storeDown(w, r, err)
		return
	}
	if p.Provider != name {
		refuse("", "state", errors.New("state issued for another provider"), "This sign-in expired. Please start again.")
		return
	}
	if key := cookieValue(r, h.authCookieName); key == "" || hashKey(key) != p.BrowserKey {
		refuse("", "browser_mismatch", errors.New("started in another browser"), "Finish signing in in the browser where you started.")
		return
	}
	// Checked; now use it up (once, even under concurrent callbacks).
	if _, err := h.app.store.TakePendingAuth(ctx, state); err != nil {
		refuse("", "state", err, "This sign-in expired. Please start again.")
		return
	}
	c, err := h.socialConnector(r, conn, name)
	if err != nil {
		refuse("", "connector_error", err, "This sign-in provider cannot be reached right now.")
		return
	}
	id, err := c.Finish(ctx, r, &connector.Begun{Nonce: p.Nonce, PKCEVerifier: p.PKCEVerifier})
	if err != nil {
		msg := "We could not sign you in with " + name + "."
		if connector.Reason(err) == "unverified_email" {
			msg = "Your " + name + " account's email address is not verified."
		}
		refuse("", connector.Reason(err), err, msg)
		return
	}
	if !id.EmailVerified {
		refuse(id.Email, "unverified_email", errors.New("email_verified is not true"), "Your "+name+" account's email address is not verified.")
		return
	}
	email, domain, err := policy.NormalizeEmail(id.Email)
	if err != nil {
		refuse(id.Email, "bad_email", err, "Your "+name+" account's email address cannot be used here.")
		return
	}
	capture, _, err := h.capture(r, domain)
	if err != nil {
		h.storeDown(w, r, err)
		return
	}
	if !policy.NonSSOAllowed(capture) {
		h.app.audit(r, &store.AuditEvent{ParentID: capture.ParentID, Actor: email, Action: "login", Outcome: "failure", Reason: "sso_required",
			Details: map[string]string{"method": "social", "provider": name}})
		h.app.metrics.signIns.WithLabelValues("social", "sso_required").Inc()
		_ = ui.Render(w, http.StatusForbidden, "notice.html", ui.Page{Title: "Single sign-on required", BasePath: h.BasePath,
			Message: "Your organization requires single sign-on.",
			Detail:  email + " must sign in through your organization's identity provider, not " + name + ".",
			LinkURL: h.BasePath + "/login?sso=true&email=" + url.QueryEscape(email) + "&return_to=" + url.QueryEscape(p.ReturnTo), LinkText: "Sign in with single sign-on"})
		return
	}
	u, err := provision.Account(ctx, h.app.store, id, email, "social")
	if err != nil {
		var ce *connector.Error
		if errors.As(err, &ce) {
			refuse(email, ce.Reason, err, "This "+name+" account cannot sign in to "+email+".")
			return
		}
		h.storeDown(w, r, err)
		return
	}
	if err := h.activateInvites(r, u); err != nil {
		h.storeDown(w, r, err)
		return
	}
	h.signIn(w, r, u, session.IssueMeta{Method: "social"}, p.ReturnTo,
		&store.AuditEvent{Actor: email, Action: "login", Outcome: "success", Details: map[string]string{"method": "social", "provider": name}})
}

func (h *Handler) socialRefused(w http.ResponseWriter, r *http.Request, provider, email, reason string, cause error, msg string) {
	if email == "" {
		email = "unknown"
	}
	h.app.audit(r, &store.AuditEvent{Actor: email, Action: "login", Outcome: "failure", Reason: reason,
		Details: map[string]string{"method": "social", "provider": provider}})
	h.app.metrics.signIns.WithLabelValues("social", reason).Inc()
	h.logger.Warn("social sign-in refused", zap.String("provider", provider), zap.String("reason", reason), zap.Error(cause))
	_ = ui.Render(w, http.StatusForbidden, "notice.html", ui.Page{Title: "Sign-in failed", BasePath: h.BasePath,
		Message: msg, LinkURL: h.BasePath + "/login", LinkText: "Try again"})
}

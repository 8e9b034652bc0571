package caddymodule

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/ssogate/ssogate/connector"
	samlconn "github.com/ssogate/ssogate/connector/saml"
	"github.com/ssogate/ssogate/provision"
	"github.com/ssogate/ssogate/session"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/ui"
)

// pendingTTL is how long a sign-in may stay at the IdP.
const pendingTTL = 10 * time.Minute

// maxACSBody bounds SAML responses: a response with hundreds of groups
// fits easily, while the XML parser's cost on hostile documents (hundreds
// of thousands of attributes) stays small.
const maxACSBody = 512 << 10

// startSSO sends the browser to the connection's IdP, keeping the state
// needed to finish in the store (any instance can finish it).
func (h *Handler) startSSO(w http.ResponseWriter, r *http.Request, conn *store.Connection, email, returnTo, browserKey string) {
	c, err := h.connector(r, conn)
	if err != nil {
		h.logger.Error("building connector", zap.String("connection", conn.ID), zap.Error(err))
		h.ssoRefused(w, r, conn, email, refusalReason(err, "connector_error"), err)
		return
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	state := base64.RawURLEncoding.EncodeToString(raw[:])
	begun, err := c.Begin(r.Context(), state, email)
	if err != nil {
		h.ssoRefused(w, r, conn, email, refusalReason(err, "begin_failed"), err)
		return
	}
	now := h.app.store.Now()
	p := &store.PendingAuth{ID: state, ConnectionID: conn.ID, Nonce: begun.Nonce, PKCEVerifier: begun.PKCEVerifier,
		SAMLRequest: begun.RequestID, ReturnTo: returnTo, Email: email, BrowserKey: hashKey(browserKey),
		CreatedAt: now, ExpiresAt: now.Add(pendingTTL)}
	if err := h.app.store.PutPendingAuth(r.Context(), p); err != nil {
		h.storeDown(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, begun.RedirectURL, http.StatusSeeOther)
}

// serveACS is the SAML assertion consumer service (HTTP-POST binding).
func (h *Handler) serveACS(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxACSBody)
	if err := r.ParseForm(); err != nil {
		h.ssoRefused(w, r, nil, "", "malformed", err)
		return
	}
	h.finishFromIdP(w, r, r.PostForm.Get("RelayState"), store.ConnSAML)
}

// serveOIDCCallback is the OIDC redirect URI.
func (h *Handler) serveOIDCCallback(w http.ResponseWriter, r *http.Request) {
	h.finishFromIdP(w, r, r.URL.Query().Get("state"), store.ConnOIDC)
}

// finishFromIdP matches the IdP's answer to a pending sign-in started in
// this browser, lets the connector check it, and signs the user in.
func (h *Handler) finishFromIdP(w http.ResponseWriter, r *http.Request, state string, typ store.ConnectionType) {
	ctx := r.Context()
	connID := r.PathValue("connection")
	conn, err := h.app.store.GetConnection(ctx, connID)
	if err != nil || conn.Type != typ {
		h.ssoRefused(w, r, nil, "", "unknown_connection", err)
		return
	}
	if state == "" {
		h.unsolicited(w, r, conn)
		return
	}
	// Check the state against this connection and browser before using
	// it up, so a leaked state value cannot burn someone's sign-in.
	p, err := h.app.store.PeekPendingAuth(ctx, state)
	if errors.Is(err, store.ErrNotFound) {
		// Expired, already used, or never issued by us: unsolicited.
		h.unsolicited(w, r, conn)
		return
	}
	if err != nil {
		h.storeDown(w, r, err)
		return
	}
	if p.ConnectionID != conn.ID {
		h.ssoRefused(w, r, conn, p.Email, "state", errors.New("state was issued for another connection"))
		return
	}
	if key := cookieValue(r, h.authCookieName); key == "" || hashKey(key) != p.BrowserKey {
		h.ssoRefused(w, r, conn, p.Email, "browser_mismatch", errors.New("the sign-in was started in another browser"))
		return
	}
	if _, err := h.app.store.TakePendingAuth(ctx, state); errors.Is(err, store.ErrNotFound) {
		h.unsolicited(w, r, conn) // used concurrently
		return
	} else if err != nil {
		h.storeDown(w, r, err)
		return
	}
	c, err := h.connector(r, conn)
	if err != nil {
		h.ssoRefused(w, r, conn, p.Email, "connector_error", err)
		return
	}
	id, err := c.Finish(ctx, r, &connector.Begun{Nonce: p.Nonce, PKCEVerifier: p.PKCEVerifier, RequestID: p.SAMLRequest})
	if err != nil {
		h.ssoRefused(w, r, conn, p.Email, connector.Reason(err), err)
		return
	}
	if id.GroupsOverage {
		h.logger.Warn("the IdP sent a groups link instead of groups (Entra ID groups overage); use SCIM push groups for group mappings",
			zap.String("connection", conn.ID))
	}
	u, changes, err := provision.SSO(ctx, h.app.store, conn, id, h.app.GroupPrefix)
	if err != nil {
		var ce *connector.Error
		if !errors.As(err, &ce) {
			h.storeDown(w, r, err)
			return
		}
		h.ssoRefused(w, r, conn, id.Email, ce.Reason, err)
		return
	}
	h.app.auditMappings(r, conn.ParentID, "sso", changes)
	if conn.TestedAt.IsZero() {
		_, _ = h.app.store.UpdateConnection(ctx, conn.ID, func(c *store.Connection) error {
			if c.TestedAt.IsZero() {
				c.TestedAt = h.app.store.Now().UTC()
			}
			return nil
		})
	}
	h.signIn(w, r, u, session.IssueMeta{Method: string(conn.Type), ParentID: conn.ParentID}, p.ReturnTo,
		&store.AuditEvent{ParentID: conn.ParentID, OrgID: conn.DefaultOrgID, Actor: u.Email, Action: "login", Outcome: "success",
			Details: map[string]string{"method": string(conn.Type), "connection": conn.ID}})
}

// signIn ends the browser's previous session (no fixation), issues a new
// one, and sends the browser back where it was going.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, u *store.User, meta session.IssueMeta, returnTo string, ev *store.AuditEvent) {
	if old := cookieValue(r, h.cookieName); old != "" {
		_ = h.app.sessions.Logout(r.Context(), old)
	}
	meta.UserAgent, meta.RemoteIP = r.UserAgent(), clientIP(r)
	cookie, sess, err := h.app.sessions.Issue(r.Context(), u, meta)
	if err != nil {
		h.logger.Error("issuing session", zap.Error(err))
		h.storeDown(w, r, err)
		return
	}
	h.setSessionCookie(w, cookie, sess.ExpiresAt)
	h.app.audit(r, ev)
	h.app.metrics.signIns.WithLabelValues(meta.Method, "success").Inc()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

// unsolicited refuses IdP-initiated SAML (and stray callbacks) on purpose,
// and points the user to an SP-initiated sign-in.
func (h *Handler) unsolicited(w http.ResponseWriter, r *http.Request, conn *store.Connection) {
	ev := &store.AuditEvent{Actor: "unknown", Action: "login", Outcome: "failure", Reason: "unsolicited"}
	if conn != nil {
		ev.ParentID, ev.Target = conn.ParentID, conn.ID
	}
	h.app.audit(r, ev)
	h.app.metrics.signIns.WithLabelValues(connType(conn), "unsolicited").Inc()
	_ = ui.Render(w, http.StatusBadRequest, "notice.html", ui.Page{
		Title: "Start sign-in from this site", BasePath: h.BasePath,
		Message: "For your security, this site does not accept sign-ins started from your identity provider's dashboard.",
		Detail:  "Continue to sign in with your work email; you will pass through your identity provider and come straight back.",
		LinkURL: h.BasePath + "/login?sso=true", LinkText: "Sign in with single sign-on",
	})
}

// ssoRefused logs the private cause, audits the reason, and shows a page
// that reveals neither.
func (h *Handler) ssoRefused(w http.ResponseWriter, r *http.Request, conn *store.Connection, email, reason string, cause error) {
	ev := &store.AuditEvent{Actor: email, Action: "login", Outcome: "failure", Reason: reason}
	if ev.Actor == "" {
		ev.Actor = "unknown"
	}
	if conn != nil {
		ev.ParentID, ev.Target = conn.ParentID, conn.ID
	}
	h.app.audit(r, ev)
	h.app.metrics.signIns.WithLabelValues(connType(conn), reason).Inc()
	h.logger.Warn("sign-in refused", zap.String("reason", reason), zap.Error(cause))
	msg := "We could not sign you in with your organization's identity provider."
	if reason == provision.ReasonOutsideOrg {
		msg = "Your identity provider signed you in with an email address that this organization has not verified."
	}
	_ = ui.Render(w, http.StatusForbidden, "notice.html", ui.Page{
		Title: "Sign-in failed", BasePath: h.BasePath, Message: msg,
		Detail:  "Try again. If it keeps failing, contact your administrator and mention the time of this attempt.",
		LinkURL: h.BasePath + "/login?sso=true", LinkText: "Try again",
	})
}

// refusalReason is a connector's own refusal reason (e.g.
// idp_metadata_expired), or fallback for any other error.
func refusalReason(err error, fallback string) string {
	if errors.Is(err, samlconn.ErrMetadataExpired) {
		return samlconn.ReasonMetadataExpired
	}
	if reason := connector.Reason(err); reason != "error" {
		return reason
	}
	return fallback
}

func connType(c *store.Connection) string {
	if c == nil {
		return "unknown"
	}
	return string(c.Type)
}

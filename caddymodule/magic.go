package caddymodule

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ssogate/ssogate/mail"
	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/session"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/ui"
)

const (
	signinLinkTTL = 15 * time.Minute
	inviteLinkTTL = 7 * 24 * time.Hour
	// Sign-in link limits, kept in the store so they hold across instances.
	linksPerEmail = 5
	linksPerIP    = 30
	linkWindow    = time.Hour
)

func newLinkToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// signInWithoutSSO mails a single-use sign-in link to an email that may
// sign in without SSO. The answer is the same whether or not the email
// has an account, so it cannot be used to find accounts.
func (h *Handler) signInWithoutSSO(w http.ResponseWriter, r *http.Request, p *loginPage) {
	ctx := r.Context()
	ip := clientIP(r)
	_, retry, ok, err := h.app.store.Hit(ctx, "signin-ip:"+ip, linkWindow, linksPerIP)
	if err != nil {
		h.storeDown(w, r, err)
		return
	}
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
		p.Error = "Too many sign-in attempts from your network. Try again later."
		h.renderLogin(w, http.StatusTooManyRequests, p)
		return
	}
	h.sendSigninLink(w, r, p.Email, p.ReturnTo)
	_ = ui.Render(w, http.StatusOK, "notice.html", ui.Page{Title: "Check your email", BasePath: h.BasePath,
		Message: "If " + p.Email + " can sign in here, we have sent it a sign-in link.",
		Detail:  "The link works once, for 15 minutes, in this browser only."})
}

func (h *Handler) sendSigninLink(w http.ResponseWriter, r *http.Request, email, returnTo string) {
	ctx := r.Context()
	_, _, ok, err := h.app.store.Hit(ctx, "signin-email:"+email, linkWindow, linksPerEmail)
	if err != nil || !ok {
		h.logger.Info("sign-in link not sent: rate limited", zap.String("email", email), zap.Error(err))
		return
	}
	if _, err := h.app.store.GetUserByEmail(ctx, email); err != nil {
		return // no account: nothing to send, and nothing to tell
	}
	tok := newLinkToken()
	now := h.app.store.Now()
	err = h.app.store.PutOneTimeToken(ctx, &store.OneTimeToken{Hash: hashKey(tok), Purpose: "signin", Email: email,
		BrowserKey: hashKey(h.browserKey(w, r)), ReturnTo: returnTo, CreatedAt: now, ExpiresAt: now.Add(signinLinkTTL)})
	if err != nil {
		h.logger.Error("storing a sign-in link", zap.Error(err))
		return
	}
	msg, err := mail.Render("signin_link", mail.SigninLinkData{Link: h.origin + h.BasePath + "/magic/" + tok,
		SiteName: h.siteName(), ExpiresIn: signinLinkTTL})
	if err == nil {
		msg.To = []string{email}
		err = h.app.mailer.Enqueue(msg)
	}
	if err != nil {
		h.logger.Error("queueing a sign-in link", zap.String("email", email), zap.Error(err))
	}
}

func (h *Handler) siteName() string {
	_, host, _ := strings.Cut(h.origin, "://")
	return host
}

// serveMagic shows a button that signs in with the link. Opening the link
// does not use it up, so mail scanners that fetch links cannot burn it.
func (h *Handler) serveMagic(w http.ResponseWriter, r *http.Request) {
	key := h.browserKey(w, r)
	_ = ui.Render(w, http.StatusOK, "magic.html", ui.Page{Title: "Sign in", BasePath: h.BasePath,
		Data: map[string]string{"Action": h.BasePath + "/magic/" + r.PathValue("token"), "CSRF": h.formToken(key, "magic")}})
}

// servePostMagic uses the link: single use, unexpired, and (for sign-in
// links) in the browser that asked for it.
func (h *Handler) servePostMagic(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	_ = r.ParseForm()
	key := h.browserKey(w, r)
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(h.formToken(key, "magic"))) {
		h.linkRefused(w, r, "", "csrf", "This form expired. Open the link from your email again.")
		return
	}
	ctx := r.Context()
	hash := hashKey(r.PathValue("token"))
	t, err := h.app.store.PeekOneTimeToken(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		h.linkRefused(w, r, "", "link_invalid", "This link has expired or was already used. Ask for a new one.")
		return
	}
	if err != nil {
		h.storeDown(w, r, err)
		return
	}
	// Checked before it is used up: opening a leaked link in another
	// browser cannot burn it.
	if t.Purpose == "signin" && t.BrowserKey != hashKey(key) {
		h.linkRefused(w, r, t.Email, "browser_mismatch", "Open the link in the browser where you asked for it.")
		return
	}
	if t, err = h.app.store.TakeOneTimeToken(ctx, hash); errors.Is(err, store.ErrNotFound) {
		h.linkRefused(w, r, "", "link_invalid", "This link has expired or was already used. Ask for a new one.")
		return
	} else if err != nil {
		h.storeDown(w, r, err)
		return
	}
	_, domain, _ := policy.NormalizeEmail(t.Email)
	capture, _, err := h.capture(r, domain)
	if err != nil {
		h.storeDown(w, r, err)
		return
	}
	if !policy.NonSSOAllowed(capture) {
		h.linkRefused(w, r, t.Email, "sso_required", "Your organization requires single sign-on.")
		return
	}
	u, err := h.app.store.GetUserByEmail(ctx, t.Email)
	if err != nil {
		h.linkRefused(w, r, t.Email, "no_account", "This account no longer exists.")
		return
	}
	if err := h.activateInvites(r, u); err != nil {
		h.storeDown(w, r, err)
		return
	}
	returnTo := t.ReturnTo
	if returnTo == "" {
		returnTo = "/"
	}
	h.signIn(w, r, u, session.IssueMeta{Method: "magic"}, policy.SafeReturnTo(returnTo, h.origin),
		&store.AuditEvent{Actor: u.Email, Action: "login", Outcome: "success", Details: map[string]string{"method": "magic", "link": t.Purpose}})
}

// activateInvites turns invited memberships active once the person proved
// the email by using a link.
func (h *Handler) activateInvites(r *http.Request, u *store.User) error {
	ms, err := h.app.store.ListUserMemberships(r.Context(), u.ID)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.Status != store.MemberInvited {
			continue
		}
		if _, err := h.app.store.UpdateMembership(r.Context(), m.OrgID, u.ID, func(x *store.Membership) error {
			if x.Status == store.MemberInvited {
				x.Status = store.MemberActive
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) linkRefused(w http.ResponseWriter, r *http.Request, email, reason, msg string) {
	if email == "" {
		email = "unknown"
	}
	h.app.audit(r, &store.AuditEvent{Actor: email, Action: "login", Outcome: "failure", Reason: reason, Details: map[string]string{"method": "magic"}})
	h.app.metrics.signIns.WithLabelValues("magic", reason).Inc()
	link := h.BasePath + "/login"
	if reason == "sso_required" {
		link += "?sso=true&email=" + url.QueryEscape(email)
	}
	_ = ui.Render(w, http.StatusForbidden, "notice.html", ui.Page{Title: "Sign-in link not valid", BasePath: h.BasePath,
		Message: msg, LinkURL: link, LinkText: "Sign in"})
}

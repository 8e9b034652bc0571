package caddymodule

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/ui"
)

// loginPage is the data of login.html.
type loginPage struct {
	Email    string
	ReturnTo string
	CSRF     string
	Error    string
	// SSOOnly is the IdP-tile page (?sso=true): SSO guidance, no other methods.
	SSOOnly bool
	// Offer, when set, offers SSO for the entered email (not enforced).
	Offer string
	// Social buttons (never on the SSO-only page).
	Social []socialButton
}

type socialButton struct{ Name, URL string }

// browserKey returns this browser's random key (setting the cookie when
// new). Pending sign-ins and login forms are bound to it, so a response
// or form made in one browser cannot be replayed from another.
func (h *Handler) browserKey(w http.ResponseWriter, r *http.Request) string {
	if v := cookieValue(r, h.authCookieName); len(v) == 43 {
		return v
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	c := &http.Cookie{Name: h.authCookieName, Value: v, Path: "/", HttpOnly: true, Secure: h.secure, MaxAge: 86400}
	if h.secure {
		// The IdP POSTs the SAML response cross-site: the key must come along.
		c.SameSite = http.SameSiteNoneMode
	}
	http.SetCookie(w, c)
	return v
}

func (h *Handler) formToken(browserKey, purpose string) string {
	m := hmac.New(sha256.New, h.app.csrfKey)
	m.Write([]byte(purpose + "\x00" + browserKey))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func hashKey(k string) string {
	s := sha256.Sum256([]byte(k))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := h.browserKey(w, r)
	p := &loginPage{ReturnTo: policy.SafeReturnTo(q.Get("return_to"), h.origin), SSOOnly: q.Get("sso") == "true",
		CSRF: h.formToken(key, "login")}
	if e := q.Get("email"); e != "" {
		if n, _, err := policy.NormalizeEmail(e); err == nil {
			p.Email = n
		}
	}
	h.renderLogin(w, http.StatusOK, p)
}

func (h *Handler) renderLogin(w http.ResponseWriter, status int, p *loginPage) {
	if !p.SSOOnly && p.Offer == "" {
		for _, s := range h.app.Social {
			p.Social = append(p.Social, socialButton{Name: s.Name,
				URL: h.BasePath + "/social/" + s.Name + "/start?return_to=" + url.QueryEscape(p.ReturnTo)})
		}
	}
	title := "Sign in"
	if p.SSOOnly {
		title = "Single sign-on"
	}
	_ = ui.Render(w, status, "login.html", ui.Page{Title: title, BasePath: h.BasePath, Data: p})
}

// servePostLogin routes an email to its sign-in method (policy.LoginRoute).
func (h *Handler) servePostLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid_form", "the form could not be read")
		return
	}
	key := h.browserKey(w, r)
	p := &loginPage{ReturnTo: policy.SafeReturnTo(r.PostForm.Get("return_to"), h.origin), SSOOnly: r.PostForm.Get("sso") == "true",
		CSRF: h.formToken(key, "login"), Email: r.PostForm.Get("email")}
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(p.CSRF)) {
		p.Error = "This form expired. Please try again."
		h.renderLogin(w, http.StatusForbidden, p)
		return
	}
	// Sign-in starts are limited per client address (before the email is
	// even read) and per email, so nobody can drive an IdP, the routing
	// lookups or the mailer in a loop.
	if !h.allowLoginStart(w, r, p, "login-ip:"+clientIP(r), loginStartsPerIP,
		"Too many sign-in attempts from your network. Wait a minute and try again.") {
		return
	}
	email, domain, err := policy.NormalizeEmail(p.Email)
	if err != nil {
		p.Error = "Enter a valid email address, like you@company.com."
		h.renderLogin(w, http.StatusBadRequest, p)
		return
	}
	p.Email = email
	if !h.allowLoginStart(w, r, p, "login-email:"+email, loginStartsPerEmail,
		"Too many sign-in attempts for this email address. Wait a minute and try again.") {
		return
	}
	capture, conns, err := h.capture(r, domain)
	if err != nil {
		h.logger.Error("login: reading capture", zap.Error(err))
		h.storeDown(w, r, err)
		return
	}
	route := policy.LoginRoute(capture)
	switch {
	case route.Method == policy.RouteSSO || (route.Method == policy.RouteSSOOffered && r.PostForm.Get("method") == "sso"):
		h.startSSO(w, r, conns[route.ConnectionID], email, p.ReturnTo, key)
	case route.Method == policy.RouteSSOOffered:
		p.Offer = "Your organization signs in to this site with single sign-on."
		h.renderLogin(w, http.StatusOK, p)
	case route.Method == policy.RouteSSOUnavailable:
		h.app.audit(r, &store.AuditEvent{ParentID: route.ParentID, Actor: email, Action: "login", Outcome: "failure", Reason: "sso_unavailable"})
		p.Error = "Your organization requires single sign-on, but it is not set up yet. Contact your administrator."
		h.renderLogin(w, http.StatusForbidden, p)
	case p.SSOOnly:
		p.Error = "Single sign-on is not set up for " + domain + ". Use the regular sign-in page."
		h.renderLogin(w, http.StatusOK, p)
	default:
		h.signInWithoutSSO(w, r, p)
	}
}

// Sign-in start limits (POST /login), per minute, kept in the store so
// they hold across instances. A person typing their email never comes
// close; a script trying addresses or looping through an IdP does.
const (
	loginStartsPerEmail = 20
	loginStartsPerIP    = 60
	loginStartWindow    = time.Minute
)

// allowLoginStart counts one sign-in start against key. Over the limit it
// answers 429 with Retry-After and the sign-in page with msg; when the
// store cannot count, it fails closed with 503, like every store error.
func (h *Handler) allowLoginStart(w http.ResponseWriter, r *http.Request, p *loginPage, key string, limit int, msg string) bool {
	_, retry, ok, err := h.app.store.Hit(r.Context(), key, loginStartWindow, limit)
	if err != nil {
		h.logger.Error("login: rate limit unavailable; refusing", zap.Error(err))
		h.storeDown(w, r, err)
		return false
	}
	if ok {
		return true
	}
	h.app.metrics.signIns.WithLabelValues("login", "rate_limited").Inc()
	h.logger.Info("sign-in start rate limited", zap.String("limit", strings.SplitN(key, ":", 2)[0]),
		zap.String("remote_ip", clientIP(r)))
	w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
	p.Error = msg
	h.renderLogin(w, http.StatusTooManyRequests, p)
	return false
}

// capture reads what routing needs about a domain: its verified owner,
// whether SSO is enforced, and that parent org's connections (tested ones
// first).
func (h *Handler) capture(r *http.Request, domain string) (policy.Capture, map[string]*store.Connection, error) {
	ctx := r.Context()
	parentID, ok, err := h.app.store.CaptureLookup(ctx, domain)
	if err != nil || !ok {
		return policy.Capture{}, nil, err
	}
	parent, err := h.app.store.GetParentOrg(ctx, parentID)
	if err != nil {
		return policy.Capture{}, nil, err
	}
	list, err := h.app.store.ListConnections(ctx, parentID)
	if err != nil {
		return policy.Capture{}, nil, err
	}
	slices.SortStableFunc(list, func(a, b store.Connection) int {
		switch {
		case !a.TestedAt.IsZero() && b.TestedAt.IsZero():
			return -1
		case a.TestedAt.IsZero() && !b.TestedAt.IsZero():
			return 1
		}
		return a.CreatedAt.Compare(b.CreatedAt)
	})
	c := policy.Capture{Captured: true, ParentID: parentID, SSOEnforced: parent.SSOEnforced}
	conns := map[string]*store.Connection{}
	for i := range list {
		c.Connections = append(c.Connections, list[i].ID)
		conns[list[i].ID] = &list[i]
	}
	return c, conns, nil
}

var errNoConnector = errors.New("connection not usable")

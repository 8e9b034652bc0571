package caddymodule

import (
	"bytes"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/ssogate/ssogate/session"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/ui"
)

// The admin console: server-rendered pages under
// <base_path>/settings/identity. It is a thin layer over the admin API:
// every page reads through GET /api/v1/… and every form is turned into one
// API call made in-process with the visitor's own session (so the API's
// authorization, validation, rate limits and audit apply unchanged).

const consolePath = "/settings/identity"

// consoleSection is one page of the console.
type consoleSection struct {
	Path  string // under consolePath ("" for the first page)
	Title string
	// OwnerOnly sections are hidden from admins (who see Members only).
	OwnerOnly bool
	// PerOrg sections show an org picker.
	PerOrg bool
	load   func(*consoleReq)
}

func (h *Handler) consoleSections() []consoleSection {
	return []consoleSection{
		{Path: "", Title: "Domains & SSO", OwnerOnly: true, load: loadDomainsSSO},
		{Path: "/members", Title: "Members", PerOrg: true, load: loadMembers},
		{Path: "/scim", Title: "SCIM provisioning", OwnerOnly: true, PerOrg: true, load: loadSCIM},
		{Path: "/group-mappings", Title: "Group mappings", OwnerOnly: true, PerOrg: true, load: loadMappings},
		{Path: "/domain-memberships", Title: "Domain memberships", OwnerOnly: true, load: loadDomainMemberships},
		{Path: "/organizations", Title: "Organizations", OwnerOnly: true, load: loadOrganizations},
		{Path: "/audit", Title: "Audit log", OwnerOnly: true, load: loadAudit},
		{Path: "/sessions", Title: "Sessions", OwnerOnly: true, load: loadSessions},
	}
}

func (h *Handler) consoleRoutes(mux *http.ServeMux) {
	b := h.BasePath + consolePath
	for _, s := range h.consoleSections() {
		mux.HandleFunc("GET "+b+s.Path, h.serveConsole(s))
	}
	mux.HandleFunc("GET "+b+"/console.js", serveConsoleJS)
	mux.HandleFunc("GET "+b+"/domain-memberships.csv", h.serveConsoleCSV)
	mux.HandleFunc("POST "+b+"/actions/{action}", h.serveConsoleAction)
}

// consoleReq is one console request: who is asking and the page being
// built.
type consoleReq struct {
	h    *Handler
	w    http.ResponseWriter
	r    *http.Request
	e    *session.Entry
	c    *caller
	page *ui.ConsolePage
}

// consoleEnter authenticates a console request. Signed-out visitors are
// sent to sign in; people who may not administer get a 403 page.
func (h *Handler) consoleEnter(w http.ResponseWriter, r *http.Request) (*consoleReq, bool) {
	e, status := h.authenticate(r)
	switch status {
	case http.StatusOK, http.StatusForbidden:
	case http.StatusUnauthorized:
		back := r.URL.RequestURI()
		if r.Method != http.MethodGet {
			// A form sent after the session ended: sign in, then back to
			// the console (the form is not replayed).
			back = h.BasePath + consolePath
			http.Redirect(w, r, h.BasePath+"/login?return_to="+url.QueryEscape(back), http.StatusSeeOther)
			return nil, false
		}
		h.unauthenticated(w, r, back, false)
		return nil, false
	default:
		_ = h.unavailable(w, r)
		return nil, false
	}
	c, status, _, _ := h.sessionCaller(r.Context(), e)
	if status == http.StatusServiceUnavailable {
		_ = h.unavailable(w, r)
		return nil, false
	}
	if status != http.StatusOK {
		_ = ui.Render(w, http.StatusForbidden, "notice.html", ui.Page{
			Title: "Not allowed", BasePath: h.BasePath,
			Message: "Only owners and admins of an organization can open its identity settings.",
			Detail:  "Signed in as " + e.Identity.Email + ".",
		})
		return nil, false
	}
	cr := &consoleReq{h: h, w: w, r: r, e: e, c: c, page: &ui.ConsolePage{
		Origin: h.origin, BasePath: h.BasePath, ConsoleURL: h.BasePath + consolePath,
		Email: e.Identity.Email, Owner: c.Owner, CSRF: h.csrfToken(e.StoreID),
		Errors: map[string]string{}, Form: map[string]string{}, Data: map[string]any{},
	}}
	if p, err := h.app.store.GetParentOrg(r.Context(), c.ParentID); err == nil {
		cr.page.ParentName = p.Name
	}
	return cr, true
}

func (h *Handler) serveConsole(s consoleSection) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cr, ok := h.consoleEnter(w, r)
		if !ok {
			return
		}
		cr.page.Flash = consoleFlash[r.URL.Query().Get("done")]
		cr.render(s, http.StatusOK)
	}
}

// render fills the section's data and writes the page. Admins asking for
// an owners' page are sent to Members.
func (cr *consoleReq) render(s consoleSection, status int) {
	h := cr.h
	if s.OwnerOnly && !cr.c.Owner {
		http.Redirect(cr.w, cr.r, h.BasePath+consolePath+"/members", http.StatusSeeOther)
		return
	}
	p := cr.page
	p.Section, p.Title = s.Path, s.Title
	for _, o := range h.consoleSections() {
		if o.OwnerOnly && !cr.c.Owner {
			continue
		}
		p.Nav = append(p.Nav, ui.NavItem{URL: p.ConsoleURL + o.Path, Title: o.Title, Current: o.Path == s.Path})
	}
	if s.PerOrg {
		cr.pickOrg()
	}
	s.load(cr)
	if err := ui.RenderConsole(cr.w, status, p); err != nil {
		h.logger.Error("console: rendering", zap.String("section", s.Title), zap.Error(err))
	}
}

// pickOrg lists the orgs the caller manages and selects ?org= (or the
// first one).
func (cr *consoleReq) pickOrg() {
	ctx := cr.r.Context()
	var orgs []ui.OrgChoice
	if cr.c.Owner {
		list, err := cr.h.app.store.ListOrgs(ctx, cr.c.ParentID)
		if err != nil {
			cr.h.logger.Error("console: listing orgs", zap.Error(err))
		}
		for _, o := range list {
			orgs = append(orgs, ui.OrgChoice{Slug: o.Slug, Name: o.Name})
		}
	} else {
		for id, role := range cr.c.Roles {
			if role != store.RoleAdmin {
				continue
			}
			if o, err := cr.h.app.store.GetOrg(ctx, id); err == nil {
				orgs = append(orgs, ui.OrgChoice{Slug: o.Slug, Name: o.Name})
			}
		}
	}
	sort.Slice(orgs, func(i, j int) bool { return orgs[i].Slug < orgs[j].Slug })
	cr.page.Orgs = orgs
	want := cr.r.FormValue("org")
	for _, o := range orgs {
		if o.Slug == want {
			cr.page.Org = o.Slug
		}
	}
	if cr.page.Org == "" && len(orgs) > 0 {
		cr.page.Org = orgs[0].Slug
	}
}

// api makes an admin API call in-process as the visitor: their cookie,
// their CSRF token, their address. It answers the status and the decoded
// JSON body.
func (cr *consoleReq) api(method, path string, body any) (int, map[string]any) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return http.StatusInternalServerError, apiErrorBody("internal", "internal error")
		}
		rd = bytes.NewReader(b)
	}
	req, err := cr.apiRequest(method, path, rd)
	if err != nil {
		return http.StatusBadRequest, apiErrorBody("invalid_request", "bad request")
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &responseRecorder{header: http.Header{}}
	cr.h.routes.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	out := map[string]any{}
	if rec.body.Len() == 0 {
		return rec.status, out
	}
	if err := json.Unmarshal(rec.body.Bytes(), &out); err != nil && rec.status < 400 {
		cr.h.logger.Error("console: reading API answer", zap.String("path", path), zap.Error(err))
		return http.StatusInternalServerError, apiErrorBody("internal", "internal error")
	}
	return rec.status, out
}

// apiRequest is an admin API request (path under /api/v1) made as the
// visitor: their cookies, their CSRF token, their address and agent.
func (cr *consoleReq) apiRequest(method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(cr.r.Context(), method, cr.h.BasePath+"/api/v1"+path, body)
	if err != nil {
		return nil, err
	}
	req.RemoteAddr, req.Host = cr.r.RemoteAddr, cr.r.Host
	req.Header.Set("Cookie", strings.Join(cr.r.Header.Values("Cookie"), "; "))
	req.Header.Set(csrfHeader, cr.page.CSRF)
	req.Header.Set("User-Agent", cr.r.UserAgent())
	return req, nil
}

// load calls a GET endpoint and stores its answer under name; a failure
// is shown on the page.
func (cr *consoleReq) load(name, path string) map[string]any {
	status, out := cr.api(http.MethodGet, path, nil)
	if status < 200 || status > 299 {
		cr.page.Errors["page"] = apiErrorMessage(out)
		return nil
	}
	cr.page.Data[name] = out
	return out
}

func apiErrorBody(code, msg string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": msg}}
}

// apiErrorMessage is the message of an API error answer.
func apiErrorMessage(out map[string]any) string {
	if e, ok := out["error"].(map[string]any); ok {
		if m, ok := e["message"].(string); ok {
			return m
		}
	}
	return "The request failed."
}

// serveConsoleAction runs one form: CSRF and origin checks, then the API
// call. Success redirects back (POST/redirect/GET) with a message; a
// refusal shows the page again with the error next to the form.
func (h *Handler) serveConsoleAction(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	if err := r.ParseForm(); err != nil {
		_ = ui.Render(w, http.StatusRequestEntityTooLarge, "notice.html", ui.Page{Title: "Form too large", BasePath: h.BasePath,
			Message: "The form could not be read: it is too large or malformed."})
		return
	}
	cr, ok := h.consoleEnter(w, r)
	if !ok {
		return
	}
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(cr.page.CSRF)) || !h.sameOrigin(r) {
		h.app.audit(r, &store.AuditEvent{ParentID: cr.c.ParentID, Actor: cr.c.Actor, Action: "console.csrf", Outcome: "failure", Reason: "csrf"})
		_ = ui.Render(w, http.StatusForbidden, "notice.html", ui.Page{Title: "Form expired", BasePath: h.BasePath,
			Message: "This form expired or came from another site. Nothing was changed.",
			LinkURL: h.BasePath + consolePath, LinkText: "Back to identity settings"})
		return
	}
	if r.PathValue("action") == "connection-test" {
		h.consoleTestConnection(cr)
		return
	}
	act, ok := consoleActions[r.PathValue("action")]
	if !ok {
		_ = ui.Render(w, http.StatusNotFound, "notice.html", ui.Page{Title: "Not found", BasePath: h.BasePath,
			Message: "No such console action."})
		return
	}
	section := h.consoleSections()[0]
	for _, s := range h.consoleSections() {
		if s.Path == act.section {
			section = s
		}
	}
	form := r.PostForm
	if errMsg := act.check(form); errMsg != "" {
		cr.refuse(section, act.form, errMsg, http.StatusBadRequest)
		return
	}
	method, path, body := act.call(form)
	status, out := cr.api(method, path, body)
	if status < 200 || status > 299 {
		cr.refuse(section, act.form, apiErrorMessage(out), max(status, http.StatusBadRequest))
		return
	}
	if act.done != nil {
		// The answer is shown once (a new SCIM token), never stored in a URL.
		act.done(cr, out)
		cr.render(section, http.StatusOK)
		return
	}
	q := url.Values{"done": {r.PathValue("action")}}
	if org := form.Get("org"); org != "" && section.PerOrg {
		q.Set("org", org)
	}
	if act.back != nil {
		for k, v := range act.back(form) {
			q.Set(k, v)
		}
	}
	http.Redirect(w, r, h.BasePath+consolePath+section.Path+"?"+q.Encode(), http.StatusSeeOther)
}

// refuse renders the section again with the error next to the form and
// the submitted values (never secrets) filled in.
func (cr *consoleReq) refuse(s consoleSection, form, msg string, status int) {
	cr.page.Errors[form] = msg
	cr.page.ErrorForm = form
	for k, v := range cr.r.PostForm {
		if k == "csrf" || k == "client_secret" || len(v) == 0 {
			continue
		}
		cr.page.Form[k] = v[0]
	}
	if status < 400 {
		status = http.StatusBadRequest
	}
	cr.render(s, status)
}

// sameOrigin checks Origin (or Referer) when the browser sends one: forms
// come from this site's own pages.
func (h *Handler) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return o == h.origin
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		return ref == h.origin || strings.HasPrefix(ref, h.origin+"/")
	}
	return true
}

func (h *Handler) serveConsoleCSV(w http.ResponseWriter, r *http.Request) {
	cr, ok := h.consoleEnter(w, r)
	if !ok {
		return
	}
	if !cr.c.Owner {
		http.Redirect(w, r, h.BasePath+consolePath+"/members", http.StatusSeeOther)
		return
	}
	req, err := cr.apiRequest(http.MethodGet, "/domain-memberships?format=csv", nil)
	if err != nil {
		_ = h.unavailable(w, r)
		return
	}
	h.routes.ServeHTTP(w, req)
}

func serveConsoleJS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(ui.ConsoleJS)
}

// formValue reads a trimmed form field.
func formValue(f url.Values, k string) string { return strings.TrimSpace(f.Get(k)) }

func orgPath(f url.Values, rest string) string {
	return "/orgs/" + url.PathEscape(formValue(f, "org")) + rest
}

// errRequired is the refusal of a form without a required field.
func errRequired(what string) string { return fmt.Sprintf("Enter %s.", what) }

// consoleTestConnection starts a real sign-in through one connection (the
// console's "Test sign-in"): the IdP signs the visitor in and they come
// back to the console; the first success marks the connection tested.
func (h *Handler) consoleTestConnection(cr *consoleReq) {
	first := h.consoleSections()[0]
	conn, err := h.app.store.GetConnection(cr.r.Context(), formValue(cr.r.PostForm, "id"))
	if err != nil || conn.ParentID != cr.c.ParentID || !cr.c.Owner {
		cr.refuse(first, "connections", "No such connection.", http.StatusNotFound)
		return
	}
	// A test sign-in is a sign-in start: the same per-email limit holds.
	key, back := h.browserKey(cr.w, cr.r), h.BasePath+consolePath+"?done=connection-test"
	lp := &loginPage{ReturnTo: back, Email: cr.e.Identity.Email, CSRF: h.formToken(key, "login")}
	if !h.allowLoginStart(cr.w, cr.r, lp, "login-email:"+cr.e.Identity.Email, loginStartsPerEmail,
		"Too many sign-in attempts for this email. Wait a minute, then try again.") {
		return
	}
	h.app.audit(cr.r, &store.AuditEvent{ParentID: cr.c.ParentID, Actor: cr.c.Actor, Action: "connection.test", Target: conn.ID, Outcome: "started"})
	h.startSSO(cr.w, cr.r, conn, cr.e.Identity.Email, back, key)
}

package caddymodule

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/session"
	"github.com/ssogate/ssogate/store"
)

// caller is who is using the admin API: an API key (acting as an owner
// of its parent org) or a signed-in user (with their roles).
type caller struct {
	ParentID string
	Actor    string // for audit: "api:<name>" or the user's email
	UserID   string // empty for API keys
	// Roles of a signed-in user by org ID; nil for API keys.
	Roles map[string]store.Role
	// Owner: may administer the parent org (domains, SSO, SCIM, …).
	Owner bool
}

// roleIn is the caller's role in an org of its parent org ("" if none).
func (c *caller) roleIn(o *store.Org) store.Role {
	if o.ParentID != c.ParentID {
		return ""
	}
	if c.Roles == nil {
		return store.RoleOwner
	}
	return c.Roles[o.ID]
}

const csrfHeader = "X-Ssogate-Csrf"

// apiRoutes registers /api/v1 endpoints.
func (h *Handler) apiRoutes(mux *http.ServeMux) {
	b := h.BasePath + "/api/v1"
	mux.HandleFunc("GET "+b+"/sessions", h.withCaller(h.apiListSessions))
	mux.HandleFunc("DELETE "+b+"/sessions", h.withCaller(h.apiRevokeSessions))
	mux.HandleFunc("GET "+b+"/domains", h.withCaller(h.apiListDomains))
	mux.HandleFunc("POST "+b+"/domains", h.withCaller(h.apiAddDomain))
	mux.HandleFunc("GET "+b+"/domains/{domain}", h.withCaller(h.apiGetDomain))
	mux.HandleFunc("POST "+b+"/domains/{domain}/verify", h.withCaller(h.apiVerifyDomain))
	mux.HandleFunc("DELETE "+b+"/domains/{domain}", h.withCaller(h.apiDeleteDomain))
	mux.HandleFunc("GET "+b+"/connections", h.withCaller(h.apiListConnections))
	mux.HandleFunc("POST "+b+"/connections", h.withCaller(h.apiCreateConnection))
	mux.HandleFunc("GET "+b+"/connections/setup", h.withCaller(h.apiConnectionSetup))
	mux.HandleFunc("GET "+b+"/connections/{id}", h.withCaller(h.apiGetConnection))
	mux.HandleFunc("DELETE "+b+"/connections/{id}", h.withCaller(h.apiDeleteConnection))
	mux.HandleFunc("GET "+b+"/orgs/{org}/members", h.withMember(h.apiListMembers))
	mux.HandleFunc("POST "+b+"/orgs/{org}/members", h.withMember(h.apiInviteMember))
	mux.HandleFunc("PATCH "+b+"/orgs/{org}/members/{user}", h.withMember(h.apiChangeRole))
	mux.HandleFunc("DELETE "+b+"/orgs/{org}/members/{user}", h.withMember(h.apiRemoveMember))
	mux.HandleFunc("GET "+b+"/orgs/{org}/group-mappings", h.withCaller(h.apiGetMappings))
	mux.HandleFunc("PUT "+b+"/orgs/{org}/group-mappings", h.withCaller(h.apiPutMappings))
	mux.HandleFunc("GET "+b+"/orgs/{org}/group-mappings/preview", h.withCaller(h.apiPreviewMappings))
	mux.HandleFunc("GET "+b+"/orgs/{org}/scim-tokens", h.withCaller(h.apiListSCIMTokens))
	mux.HandleFunc("POST "+b+"/orgs/{org}/scim-tokens", h.withCaller(h.apiCreateSCIMToken))
	mux.HandleFunc("DELETE "+b+"/orgs/{org}/scim-tokens/{id}", h.withCaller(h.apiRevokeSCIMToken))
	mux.HandleFunc("GET "+b+"/settings", h.withCaller(h.apiGetSettings))
	mux.HandleFunc("PATCH "+b+"/settings", h.withCaller(h.apiPatchSettings))
	mux.HandleFunc("GET "+b+"/sso", h.withCaller(h.apiGetSSO))
	mux.HandleFunc("PUT "+b+"/sso", h.withCaller(h.apiPutSSO))
	mux.HandleFunc("GET "+b+"/audit-events", h.withCaller(h.apiListAudit))
	h.parentRoutes(mux, b)
	h.consoleRoutes(mux)
}

// withCaller authenticates an admin API request for owners of the parent
// org: `Authorization: Bearer` with an API key, or a session cookie plus
// the CSRF header.
func (h *Handler) withCaller(fn func(http.ResponseWriter, *http.Request, *caller)) http.HandlerFunc {
	return h.withRole(true, fn)
}

// withMember is withCaller for endpoints admins may use too (members);
// handlers check the role in the org concerned.
func (h *Handler) withMember(fn func(http.ResponseWriter, *http.Request, *caller)) http.HandlerFunc {
	return h.withRole(false, fn)
}

func (h *Handler) withRole(ownerOnly bool, fn func(http.ResponseWriter, *http.Request, *caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Failed authentications are limited per client address (no key
		// guessing); authenticated callers per identity.
		ipKey := "api-ip:" + clientIP(r)
		if !h.allow(w, ipKey, apiFailuresPerMinute, false) {
			return
		}
		c, status, code, msg := h.apiCaller(r)
		if status == http.StatusOK && ownerOnly && !c.Owner {
			status, code, msg = http.StatusForbidden, "forbidden", "only owners of the parent organization may do this"
		}
		if status == http.StatusUnauthorized && !h.allow(w, ipKey, apiFailuresPerMinute, true) {
			return // allow answered (429, or 503 when the store cannot count)
		}
		if status != http.StatusOK {
			writeJSONError(w, status, code, msg)
			return
		}
		if !h.allow(w, "api-caller:"+c.Actor+"|"+c.ParentID, apiCallsPerMinute, true) {
			return
		}
		// Services audit with the request's client address.
		r = r.WithContext(context.WithValue(r.Context(), requestKey{}, r))
		fn(w, r, c)
	}
}

func (h *Handler) apiCaller(r *http.Request) (*caller, int, string, string) {
	if !h.app.Healthy() {
		return nil, http.StatusServiceUnavailable, "unavailable", "the store is unreachable"
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return nil, http.StatusUnauthorized, "unauthenticated", "use Authorization: Bearer <api key>"
		}
		rec, err := h.app.store.LookupSecret(r.Context(), "api", tok)
		if errors.Is(err, store.ErrNotFound) {
			return nil, http.StatusUnauthorized, "unauthenticated", "unknown or revoked API key"
		}
		if err != nil {
			h.app.storeFailed(err)
			return nil, http.StatusServiceUnavailable, "unavailable", "the store is unreachable"
		}
		return &caller{ParentID: rec.ParentID, Actor: "api:" + rec.Name, Owner: true}, http.StatusOK, "", ""
	}
	e, status := h.authenticate(r)
	switch status {
	case http.StatusOK, http.StatusForbidden:
	case http.StatusUnauthorized:
		return nil, status, "unauthenticated", "sign in or use an API key"
	default:
		return nil, status, "unavailable", "the store is unreachable"
	}
	if !hmac.Equal([]byte(r.Header.Get(csrfHeader)), []byte(h.csrfToken(e.StoreID))) {
		return nil, http.StatusForbidden, "csrf", "missing or wrong " + csrfHeader + " header"
	}
	return h.sessionCaller(r.Context(), e)
}

// sessionCaller is the admin caller of a signed-in person (the API with a
// cookie, and the console).
func (h *Handler) sessionCaller(ctx context.Context, e *session.Entry) (*caller, int, string, string) {
	// A person may belong to orgs of several parent orgs: act for the one
	// where they hold the highest role, with their roles in its orgs.
	byParent := map[string]map[string]store.Role{}
	best, bestRank := "", 0
	for _, o := range e.Identity.Orgs {
		org, err := h.app.store.GetOrg(ctx, o.OrgID)
		if err != nil {
			continue
		}
		if byParent[org.ParentID] == nil {
			byParent[org.ParentID] = map[string]store.Role{}
		}
		byParent[org.ParentID][o.OrgID] = o.Role
		if rank := store.RoleRank(o.Role); rank > bestRank || (rank == bestRank && org.ParentID < best) {
			best, bestRank = org.ParentID, rank
		}
	}
	c := &caller{Actor: e.Identity.Email, UserID: e.Identity.UserID, ParentID: best, Roles: byParent[best]}
	if c.Roles == nil {
		c.Roles = map[string]store.Role{}
	}
	for _, role := range c.Roles {
		c.Owner = c.Owner || policy.CanAdminister(role)
	}
	manager := c.Owner
	for _, role := range c.Roles {
		manager = manager || role == store.RoleAdmin
	}
	if !manager {
		return nil, http.StatusForbidden, "forbidden", "only owners and admins may use the admin API"
	}
	return c, http.StatusOK, "", ""
}

// csrfToken binds a CSRF token to one session.
func (h *Handler) csrfToken(storeID string) string {
	m := hmac.New(sha256.New, h.app.csrfKey)
	m.Write([]byte(storeID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// userInParent finds a user by ID or email, only if they belong to an org
// of the caller's parent org (others are "not found": no cross-tenant
// probing).
func (h *Handler) userInParent(r *http.Request, c *caller, ref string) (*store.User, error) {
	ctx := r.Context()
	u, err := h.app.store.GetUserByRef(ctx, ref)
	if err != nil {
		return nil, err
	}
	ms, err := h.app.store.ListUserMemberships(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		o, err := h.app.store.GetOrg(ctx, m.OrgID)
		if err == nil && o.ParentID == c.ParentID {
			return u, nil
		}
	}
	return nil, store.ErrNotFound
}

func (h *Handler) apiUser(w http.ResponseWriter, r *http.Request, c *caller) (*store.User, bool) {
	ref := r.URL.Query().Get("user")
	if ref == "" {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "the user query parameter (ID or email) is required")
		return nil, false
	}
	u, err := h.userInParent(r, c, ref)
	if errors.Is(err, store.ErrNotFound) {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such user in your organizations")
		return nil, false
	}
	if err != nil {
		h.apiStoreError(w, err)
		return nil, false
	}
	return u, true
}

// apiStoreError answers an unexpected error: 503 when the store is
// unreachable (and the gateway fails closed), 409 on a lost race, else 500.
// The cause goes to the log, never to the client.
func (h *Handler) apiStoreError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded):
		h.logger.Error("admin api: store unreachable", zap.Error(err))
		h.app.storeFailed(err)
		writeJSONError(w, http.StatusServiceUnavailable, "unavailable", "the store is unreachable")
	case errors.Is(err, store.ErrConflict):
		writeJSONError(w, http.StatusConflict, "conflict", "a concurrent change won; try again")
	default:
		h.logger.Error("admin api error", zap.Error(err))
		writeJSONError(w, http.StatusInternalServerError, "internal", "internal error")
	}
}

const timeFormat = "2006-01-02T15:04:05Z07:00"

// Admin API limits, per minute, kept in the store (they hold across instances).
const (
	apiCallsPerMinute    = 600
	apiFailuresPerMinute = 30
)

// allow counts a hit against key (when count is set; otherwise it only
// checks) and answers 429 with Retry-After when over limit. It fails
// closed: when the store cannot count, it answers 503 and marks the store
// down, as every other store error does (a limit that lapses whenever the
// store falters is no limit).
func (h *Handler) allow(w http.ResponseWriter, key string, limit int, count bool) bool {
	ctx := context.Background()
	var retry time.Duration
	var ok bool
	var err error
	if count {
		_, retry, ok, err = h.app.store.Hit(ctx, key, time.Minute, limit)
	} else {
		var n int
		n, retry, err = h.app.store.Peek(ctx, key, time.Minute)
		ok = n < limit
	}
	if err != nil {
		h.logger.Error("admin api: rate limit unavailable; refusing", zap.Error(err))
		h.app.storeFailed(err)
		writeJSONError(w, http.StatusServiceUnavailable, "unavailable", "the store is unreachable")
		return false
	}
	if ok {
		return true
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
	msg := "too many requests; slow down"
	if !count {
		msg = "too many failed attempts; slow down"
	}
	writeJSONError(w, http.StatusTooManyRequests, "rate_limited", msg)
	return false
}

// maxAPIBody bounds admin API request bodies.
const maxAPIBody = 64 << 10

// decodeJSON reads a JSON object body strictly: JSON content type, size
// limit, no unknown fields, nothing after the object. On failure it has
// written the error response.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); strings.TrimSpace(strings.ToLower(mt)) != "application/json" {
		writeJSONError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSONError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is over %d bytes", maxAPIBody))
			return false
		}
		writeJSONError(w, http.StatusBadRequest, "invalid_json", "the body is not a valid JSON object for this endpoint: "+err.Error())
		return false
	}
	return true
}

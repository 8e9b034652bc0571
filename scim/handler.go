// Package scim is ssogate's SCIM 2.0 server (RFC 7643/7644), built on
// github.com/elimity-com/scim and bound to the directory in package store.
//
// Each request carries a bearer token scoped to one organization; the
// handler resolves it, puts the tenant in the request context and hands the
// request to the library, whose resource handlers (users.go, groups.go)
// read and change only that organization's members and groups.
package scim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	elscim "github.com/elimity-com/scim"
	"go.uber.org/zap"

	"github.com/ssogate/ssogate/store"
)

// DefaultMaxBody is the request body limit when Config.MaxBody is 0.
const DefaultMaxBody = 1 << 20

// touchInterval bounds how often a token's last_used_at is written.
const touchInterval = time.Minute

// Config wires the SCIM handler to the directory and the session layer.
type Config struct {
	// Store is the directory (required).
	Store *store.Store
	// Revoke ends every session of a user (required): deactivating or
	// deleting a user calls it in the same request.
	Revoke func(ctx context.Context, userID string) error
	// Refresh drops a user's cached identity after a profile, status or
	// group change (optional).
	Refresh func(ctx context.Context, userID string) error
	// OnGroupsChanged runs after any change to group membership or group
	// names, with the users affected (optional; group mappings plug in here).
	OnGroupsChanged func(ctx context.Context, orgID string, userIDs []string) error
	// Audit records an event (optional; default: Store.AppendAudit).
	Audit func(ctx context.Context, e *store.AuditEvent)
	// Logger receives errors; nil means no logging.
	Logger *zap.Logger
	// BasePath is the URL path prefix where the handler is mounted, e.g.
	// "/.ssogate/scim/v2". Requests whose path does not start with it are
	// taken as already relative to it.
	BasePath string
	// MaxBody limits request bodies in bytes (0: DefaultMaxBody); larger
	// bodies are refused with 413 before anything reads them.
	MaxBody int64
}

// handler is the http.Handler NewHandler returns.
type handler struct {
	cfg      Config
	st       *store.Store
	log      *zap.Logger
	server   elscim.Server
	basePath string
	maxBody  int64
	audit    func(ctx context.Context, e *store.AuditEvent)
	users    resSchema
	groups   resSchema

	touchMu sync.Mutex
	touched map[string]time.Time // token record ID -> last TouchSecret
}

// tenant is who a request acts for, resolved from its token.
type tenant struct {
	orgID    string
	parentID string
	actor    string // "scim:<token name>"
	remoteIP string
	// groupMappings: the org grants access through Advanced Group
	// Mappings, so SCIM members start unmapped and mappings grant access.
	groupMappings bool
}

type tenantKey struct{}

func tenantOf(r *http.Request) *tenant {
	t, _ := r.Context().Value(tenantKey{}).(*tenant)
	if t == nil {
		// Unreachable through ServeHTTP; refuse rather than act on no org.
		panic("scim: request without tenant")
	}
	return t
}

// NewHandler returns the SCIM 2.0 handler for the directory in cfg.Store.
func NewHandler(cfg Config) (http.Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("scim: Config.Store is required")
	}
	if cfg.Revoke == nil {
		return nil, errors.New("scim: Config.Revoke is required: deactivating a user must end its sessions")
	}
	h := &handler{
		cfg:     cfg,
		st:      cfg.Store,
		log:     cfg.Logger,
		maxBody: cfg.MaxBody,
		audit:   cfg.Audit,
		touched: map[string]time.Time{},
		users:   userResSchema(),
		groups:  groupResSchema(),
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBody
	}
	if bp := strings.Trim(cfg.BasePath, "/"); bp != "" {
		h.basePath = "/" + bp
	}
	if h.audit == nil {
		h.audit = func(ctx context.Context, e *store.AuditEvent) {
			if err := h.st.AppendAudit(ctx, e); err != nil {
				h.log.Error("scim: writing audit event", zap.String("action", e.Action), zap.Error(err))
			}
		}
	}
	srv, err := h.newServer()
	if err != nil {
		return nil, err
	}
	h.server = srv
	return h, nil
}

// ServeHTTP authenticates the token, limits and normalises the body, and
// passes the request to the library with the tenant in its context.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	t, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	path := r.URL.Path
	if h.basePath != "" {
		if path == h.basePath {
			path = "/"
		} else if strings.HasPrefix(path, h.basePath+"/") {
			path = path[len(h.basePath):]
		}
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, scimError(http.StatusRequestEntityTooLarge, "",
				fmt.Sprintf("The request body is larger than the limit of %d bytes.", h.maxBody)))
			return
		case err != nil:
			writeError(w, errInvalidSyntax("The request body could not be read."))
			return
		}
		body = h.normalizeBody(r.Method, path, body)
	}
	r2 := r.Clone(context.WithValue(r.Context(), tenantKey{}, t))
	r2.URL.Path, r2.URL.RawPath = path, ""
	r2.Body, r2.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	if isListRequest(r.Method, path) {
		fw := &listFixer{ResponseWriter: w}
		h.server.ServeHTTP(fw, r2)
		fw.flush()
		return
	}
	h.server.ServeHTTP(w, r2)
}

// authenticate resolves the bearer token to its org, or answers 401 (or
// 503 when the directory cannot be read: fail closed).
func (h *handler) authenticate(w http.ResponseWriter, r *http.Request) (*tenant, bool) {
	tok, ok := bearerToken(r)
	if !ok {
		unauthorized(w, "", "Authentication is required: send Authorization: Bearer <SCIM token>.")
		return nil, false
	}
	ctx := r.Context()
	rec, err := h.st.LookupSecret(ctx, store.SecretSCIM, tok)
	if errors.Is(err, store.ErrNotFound) {
		unauthorized(w, "invalid_token", "The SCIM token is not valid.")
		return nil, false
	}
	if err != nil {
		h.log.Error("scim: looking up token", zap.Error(err))
		writeError(w, scimError(http.StatusServiceUnavailable, "", "The directory is unavailable; try again later."))
		return nil, false
	}
	org, err := h.st.GetOrg(ctx, rec.OrgID)
	if errors.Is(err, store.ErrNotFound) {
		unauthorized(w, "invalid_token", "The SCIM token is not valid.")
		return nil, false
	}
	if err != nil {
		h.log.Error("scim: reading the token's org", zap.String("org_id", rec.OrgID), zap.Error(err))
		writeError(w, scimError(http.StatusServiceUnavailable, "", "The directory is unavailable; try again later."))
		return nil, false
	}
	h.touch(ctx, rec)
	ip := r.RemoteAddr
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	return &tenant{orgID: org.ID, parentID: org.ParentID, actor: "scim:" + rec.Name, remoteIP: ip, groupMappings: org.GroupMappings}, true
}

// touch records the token's use at most once per touchInterval.
func (h *handler) touch(ctx context.Context, rec *store.SecretRecord) {
	now := h.st.Now().UTC()
	h.touchMu.Lock()
	last, seen := h.touched[rec.ID]
	if !seen || rec.LastUsedAt.After(last) {
		last = rec.LastUsedAt // another instance or an earlier run may have touched it
	}
	due := now.Sub(last) >= touchInterval
	if due {
		h.touched[rec.ID] = now
	} else if !seen {
		h.touched[rec.ID] = last
	}
	h.touchMu.Unlock()
	if due {
		if err := h.st.TouchSecret(ctx, rec.Hash, now); err != nil {
			h.log.Warn("scim: recording token use", zap.String("token_id", rec.ID), zap.Error(err))
		}
	}
}

func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

// auditChange records a successful change made through tenant t.
func (h *handler) auditChange(ctx context.Context, t *tenant, action, target string, details map[string]string) {
	h.audit(ctx, &store.AuditEvent{
		ParentID: t.parentID, OrgID: t.orgID, Actor: t.actor, Action: action, Target: target,
		Outcome: "success", Details: details, RemoteIP: t.remoteIP,
	})
}

// revoke ends a user's sessions; a failure is a safe 500 (the caller has
// already written, and revokes again when the request is retried).
func (h *handler) revoke(ctx context.Context, userID string) error {
	if err := h.cfg.Revoke(ctx, userID); err != nil {
		h.log.Error("scim: ending sessions", zap.String("user_id", userID), zap.Error(err))
		return scimError(http.StatusInternalServerError, "",
			"The change was saved, but ending the user's sessions failed; retry the request.")
	}
	return nil
}

func (h *handler) refresh(ctx context.Context, userIDs ...string) {
	if h.cfg.Refresh == nil {
		return
	}
	for _, id := range userIDs {
		if err := h.cfg.Refresh(ctx, id); err != nil {
			h.log.Warn("scim: refreshing cached identity", zap.String("user_id", id), zap.Error(err))
		}
	}
}

// groupsChanged runs the group-mappings hook for the users whose groups
// changed, then refreshes their cached identities.
func (h *handler) groupsChanged(ctx context.Context, t *tenant, userIDs []string) error {
	if len(userIDs) == 0 {
		return nil
	}
	if h.cfg.OnGroupsChanged != nil {
		if err := h.cfg.OnGroupsChanged(ctx, t.orgID, userIDs); err != nil {
			h.log.Error("scim: applying group changes", zap.String("org_id", t.orgID), zap.Int("users", len(userIDs)), zap.Error(err))
			h.refresh(ctx, userIDs...)
			return scimError(http.StatusInternalServerError, "",
				"The change was saved, but applying it to group mappings failed; retry the request.")
		}
	}
	h.refresh(ctx, userIDs...)
	return nil
}

package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ssogate/ssogate/provision"
	"github.com/ssogate/ssogate/scim"
)

// scimHandler builds the SCIM 2.0 endpoint for this site. Deactivations
// end sessions in the same request; group changes run group mappings.
func (h *Handler) scimHandler() (http.Handler, error) {
	a := h.app
	hd, err := scim.NewHandler(scim.Config{
		Store: a.store,
		Revoke: func(ctx context.Context, userID string) error {
			_, err := a.sessions.RevokeUser(ctx, userID)
			return err
		},
		Refresh:  func(ctx context.Context, userID string) error { return a.sessions.Refresh(ctx, userID) },
		Audit:    a.auditCtx,
		Logger:   h.logger.Named("scim"),
		BasePath: h.BasePath + "/scim/v2",
		OnGroupsChanged: func(ctx context.Context, orgID string, userIDs []string) error {
			o, err := a.store.GetOrg(ctx, orgID)
			if err != nil {
				return err
			}
			for _, id := range userIDs {
				u, err := a.store.GetUser(ctx, id)
				if err != nil {
					continue
				}
				changes, err := provision.ApplyMappings(ctx, a.store, o.ParentID, u, a.GroupPrefix)
				if err != nil {
					return fmt.Errorf("applying group mappings for %s: %w", u.Email, err)
				}
				if len(changes) > 0 {
					a.auditMappings(requestFrom(ctx), o.ParentID, "scim", changes)
					_ = a.sessions.Refresh(ctx, id)
				}
			}
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("ssogate: building the SCIM endpoint: %w", err)
	}
	return hd, nil
}

// requestFrom returns the request services carry in their context, if any.
func requestFrom(ctx context.Context) *http.Request {
	r, _ := ctx.Value(requestKey{}).(*http.Request)
	return r
}

// scimCallsPerMinute bounds each SCIM token (an initial sync of thousands
// of users fits; a runaway client does not take the gateway down).
const scimCallsPerMinute = 6000

// scimAllowed counts the request against its bearer token's limit (kept in
// the store, so it holds across instances) and answers 429 in SCIM form
// when over it. It fails closed: when the store cannot count, it answers
// 503 (in SCIM form) and marks the store down.
func (h *Handler) scimAllowed(w http.ResponseWriter, r *http.Request) bool {
	_, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || tok == "" {
		return true // the SCIM handler answers 401
	}
	_, retry, allowed, err := h.app.store.Hit(r.Context(), "scim:"+hashKey(tok), time.Minute, scimCallsPerMinute)
	if err != nil {
		h.logger.Error("scim: rate limit unavailable; refusing", zap.Error(err))
		h.app.storeFailed(err)
		w.Header().Set("Retry-After", "1")
		writeSCIMError(w, http.StatusServiceUnavailable, "the service is unavailable; retry later")
		return false
	}
	if allowed {
		return true
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
	writeSCIMError(w, http.StatusTooManyRequests, "too many requests for this token; retry later")
	return false
}

// writeSCIMError writes an RFC 7644 §3.12 error.
func writeSCIMError(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
		"status":  strconv.Itoa(status),
		"detail":  detail,
	})
}

// statusRecorder remembers the status a handler wrote, for metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// scimResource names the resource of a SCIM path for metrics labels.
func scimResource(path string) string {
	for _, r := range []string{"Users", "Groups", "ServiceProviderConfig", "Schemas", "ResourceTypes"} {
		if strings.Contains(path, "/scim/v2/"+r) {
			return r
		}
	}
	return "other"
}

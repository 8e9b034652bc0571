package caddymodule

import (
	"net/http"

	"github.com/ssogate/ssogate/store"
)

type sessionView struct {
	ID        string `json:"id"`
	Method    string `json:"method"`
	CreatedAt string `json:"created_at"`
	LastSeen  string `json:"last_seen"`
	ExpiresAt string `json:"expires_at"`
	UserAgent string `json:"user_agent,omitempty"`
	RemoteIP  string `json:"remote_ip,omitempty"`
}

func (h *Handler) apiListSessions(w http.ResponseWriter, r *http.Request, c *caller) {
	u, ok := h.apiUser(w, r, c)
	if !ok {
		return
	}
	list, err := h.app.store.UserSessions(r.Context(), u.ID)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	out := make([]sessionView, 0, len(list))
	for _, s := range list {
		out = append(out, sessionView{ID: s.ID[:16], Method: s.Method, CreatedAt: s.CreatedAt.UTC().Format(timeFormat),
			LastSeen: s.LastSeen.UTC().Format(timeFormat), ExpiresAt: s.ExpiresAt.UTC().Format(timeFormat),
			UserAgent: s.UserAgent, RemoteIP: s.RemoteIP})
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": u.ID, "email": u.Email, "sessions": out})
}

// apiRevokeSessions is "sign out everywhere" for one user.
func (h *Handler) apiRevokeSessions(w http.ResponseWriter, r *http.Request, c *caller) {
	u, ok := h.apiUser(w, r, c)
	if !ok {
		return
	}
	n, err := h.app.sessions.RevokeUser(r.Context(), u.ID)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, Actor: c.Actor, Action: "session.revoke_all",
		Target: u.Email, Outcome: "success"})
	writeJSON(w, http.StatusOK, map[string]any{"user": u.ID, "email": u.Email, "revoked": n})
}

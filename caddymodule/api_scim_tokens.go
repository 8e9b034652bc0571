package caddymodule

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ssogate/ssogate/store"
)

func (h *Handler) scimBaseURL() string { return h.origin + h.BasePath + "/scim/v2" }

// apiCreateSCIMToken makes a bearer token for one org's SCIM endpoint. The
// token is shown once; only its hash is stored.
func (h *Handler) apiCreateSCIMToken(w http.ResponseWriter, r *http.Request, c *caller) {
	o, ok := h.ownOrg(w, r, c)
	if !ok {
		return
	}
	var in struct {
		Name string `json:"name"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 100 {
		writeJSONError(w, http.StatusBadRequest, "invalid_name", "name is required (at most 100 characters), e.g. the IdP's name")
		return
	}
	secret := store.NewSecret("ssogate_scim_")
	rec := &store.SecretRecord{Kind: store.SecretSCIM, Hash: store.HashSecret(secret), Name: in.Name, OrgID: o.ID}
	if err := h.app.store.CreateSecret(r.Context(), rec); err != nil {
		h.apiStoreError(w, err)
		return
	}
	h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, OrgID: o.ID, Actor: c.Actor, Action: "scim_token.create", Target: in.Name, Outcome: "success"})
	writeJSON(w, http.StatusCreated, map[string]any{"id": rec.ID, "name": rec.Name, "org": o.Slug, "created_at": rec.CreatedAt,
		"token": secret, "scim_base_url": h.scimBaseURL(),
		"note": "copy the token now: it is not shown again"})
}

func (h *Handler) apiListSCIMTokens(w http.ResponseWriter, r *http.Request, c *caller) {
	o, ok := h.ownOrg(w, r, c)
	if !ok {
		return
	}
	list, err := h.app.store.ListSecrets(r.Context(), store.SecretSCIM, o.ID)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	if list == nil {
		list = []store.SecretRecord{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"org": o.Slug, "scim_base_url": h.scimBaseURL(), "tokens": list})
}

func (h *Handler) apiRevokeSCIMToken(w http.ResponseWriter, r *http.Request, c *caller) {
	o, ok := h.ownOrg(w, r, c)
	if !ok {
		return
	}
	err := h.app.store.RevokeSecret(r.Context(), store.SecretSCIM, o.ID, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such SCIM token")
		return
	}
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, OrgID: o.ID, Actor: c.Actor, Action: "scim_token.revoke", Target: r.PathValue("id"), Outcome: "success"})
	w.WriteHeader(http.StatusNoContent)
}

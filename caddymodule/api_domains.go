package caddymodule

import (
	"errors"
	"net/http"

	"github.com/ssogate/ssogate/domains"
	"github.com/ssogate/ssogate/store"
)

func (h *Handler) apiListDomains(w http.ResponseWriter, r *http.Request, c *caller) {
	list, err := h.app.store.ListDomainClaims(r.Context(), c.ParentID)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	if list == nil {
		list = []store.Domain{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"domains": list})
}

func (h *Handler) apiAddDomain(w http.ResponseWriter, r *http.Request, c *caller) {
	var body struct {
		Domain string `json:"domain"`
	}
	if !decodeJSON(w, r, &body) {
		return
	}
	d, err := h.app.domains.Add(r.Context(), c.ParentID, body.Domain, c.Actor)
	if h.domainError(w, err) {
		return
	}
	writeJSON(w, http.StatusCreated, d)
}

func (h *Handler) apiGetDomain(w http.ResponseWriter, r *http.Request, c *caller) {
	d, err := h.app.domains.Get(r.Context(), c.ParentID, r.PathValue("domain"))
	if h.domainError(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// apiVerifyDomain is the "Pending" refresh button: it checks DNS now.
func (h *Handler) apiVerifyDomain(w http.ResponseWriter, r *http.Request, c *caller) {
	d, err := h.app.domains.Verify(r.Context(), c.ParentID, r.PathValue("domain"), c.Actor)
	if h.domainError(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (h *Handler) apiDeleteDomain(w http.ResponseWriter, r *http.Request, c *caller) {
	if h.domainError(w, h.app.domains.Delete(r.Context(), c.ParentID, r.PathValue("domain"), c.Actor)) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// domainError writes err (if any) and reports whether it did.
func (h *Handler) domainError(w http.ResponseWriter, err error) bool {
	if err == nil {
		return false
	}
	var de *domains.Error
	if errors.As(err, &de) {
		writeJSONError(w, de.Status, de.Code, de.Message)
		return true
	}
	h.apiStoreError(w, err)
	return true
}

package caddymodule

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/store"
)

// parentRoutes registers the parent-org endpoints of /api/v1 (b is the
// /…/api/v1 prefix): the orgs of the caller's parent org, merge proposals
// between parent orgs, and the View Domain Memberships panel. All are for
// owners of the parent org (API keys act as owners of theirs).
func (h *Handler) parentRoutes(mux *http.ServeMux, b string) {
	mux.HandleFunc("GET "+b+"/orgs", h.withCaller(h.apiListOrgs))
	mux.HandleFunc("POST "+b+"/orgs", h.withCaller(h.apiCreateOrg))
	mux.HandleFunc("GET "+b+"/merge-proposals", h.withCaller(h.apiListMergeProposals))
	mux.HandleFunc("POST "+b+"/merge-proposals", h.withCaller(h.apiCreateMergeProposal))
	mux.HandleFunc("GET "+b+"/merge-proposals/{id}", h.withCaller(h.apiGetMergeProposal))
	mux.HandleFunc("POST "+b+"/merge-proposals/{id}/approve", h.withCaller(h.apiApproveMergeProposal))
	mux.HandleFunc("POST "+b+"/merge-proposals/{id}/decline", h.withCaller(h.apiDeclineMergeProposal))
	mux.HandleFunc("POST "+b+"/merge-proposals/{id}/withdraw", h.withCaller(h.apiWithdrawMergeProposal))
	mux.HandleFunc("GET "+b+"/domain-memberships", h.withCaller(h.apiDomainMemberships))
}

type orgView struct {
	ID            string    `json:"id"`
	Slug          string    `json:"slug"`
	Name          string    `json:"name"`
	GroupMappings bool      `json:"group_mappings"`
	MemberCount   int       `json:"member_count"`
	CreatedAt     time.Time `json:"created_at"`
}

// memberCount counts the memberships of an org that are not deactivated
// (active and invited).
func (h *Handler) memberCount(r *http.Request, orgID string) (int, error) {
	ms, err := h.app.store.ListOrgMembers(r.Context(), orgID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range ms {
		if m.Status != store.MemberInactive {
			n++
		}
	}
	return n, nil
}

// apiListOrgs lists the orgs of the caller's parent org.
func (h *Handler) apiListOrgs(w http.ResponseWriter, r *http.Request, c *caller) {
	orgs, err := h.app.store.ListOrgs(r.Context(), c.ParentID)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	out := make([]orgView, 0, len(orgs))
	for _, o := range orgs {
		n, err := h.memberCount(r, o.ID)
		if err != nil {
			h.apiStoreError(w, err)
			return
		}
		out = append(out, orgView{ID: o.ID, Slug: o.Slug, Name: o.Name, GroupMappings: o.GroupMappings, MemberCount: n, CreatedAt: o.CreatedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"orgs": out})
}

// maxOrgName bounds org names.
const maxOrgName = 200

// apiCreateOrg creates another org under the caller's parent org. A
// signed-in owner becomes owner of the new org, so they can manage its
// members at once.
func (h *Handler) apiCreateOrg(w http.ResponseWriter, r *http.Request, c *caller) {
	var in struct {
		Slug string `json:"slug"`
		Name string `json:"name"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	slug := store.NormalizeSlug(in.Slug)
	if !policy.ValidSlug(slug) {
		writeJSONError(w, http.StatusBadRequest, "invalid_slug",
			"slug must be 1 to 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit")
		return
	}
	name := strings.TrimSpace(in.Name)
	if name == "" {
		name = slug
	}
	if len(name) > maxOrgName || strings.ContainsAny(name, "\r\n\x00") {
		writeJSONError(w, http.StatusBadRequest, "invalid_name", "name must be one line of at most 200 bytes")
		return
	}
	ctx := r.Context()
	o := &store.Org{Slug: slug, Name: name, ParentID: c.ParentID}
	if err := h.app.store.CreateOrg(ctx, o); err != nil {
		switch {
		case errors.Is(err, store.ErrAlreadyExists):
			writeJSONError(w, http.StatusConflict, "slug_taken", "the slug "+slug+" is taken; choose another")
		case errors.Is(err, store.ErrInvalid):
			writeJSONError(w, http.StatusBadRequest, "invalid_slug", "the slug "+slug+" is not allowed")
		default:
			h.apiStoreError(w, err)
		}
		return
	}
	details := map[string]string{"name": name}
	if c.UserID != "" {
		m := &store.Membership{OrgID: o.ID, UserID: c.UserID, Role: store.RoleOwner, Status: store.MemberActive,
			Source: "org_create", CreatedAt: h.app.store.Now().UTC()}
		if err := h.app.store.PutMembership(ctx, m); err != nil {
			h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, OrgID: o.ID, Actor: c.Actor, Action: "org.create", Target: slug,
				Outcome: "failure", Reason: "creator_membership", Details: details})
			h.apiStoreError(w, err)
			return
		}
		details["creator_role"] = string(store.RoleOwner)
		// The new org reaches upstream headers on the next request.
		_ = h.app.sessions.Refresh(ctx, c.UserID)
	}
	h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, OrgID: o.ID, Actor: c.Actor, Action: "org.create", Target: slug,
		Outcome: "success", Details: details})
	n := 0
	if c.UserID != "" {
		n = 1
	}
	writeJSON(w, http.StatusCreated, orgView{ID: o.ID, Slug: o.Slug, Name: o.Name, GroupMappings: o.GroupMappings, MemberCount: n, CreatedAt: o.CreatedAt})
}

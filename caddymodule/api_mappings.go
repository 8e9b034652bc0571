package caddymodule

import (
	"context"
	"net/http"

	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/provision"
	"github.com/ssogate/ssogate/store"
)

// mappingCandidates are the users group mappings can affect in a parent
// org: everyone with a membership in any of its orgs.
func (h *Handler) mappingCandidates(ctx context.Context, parentID string) ([]*store.User, error) {
	orgs, err := h.app.store.ListOrgs(ctx, parentID)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []*store.User
	for _, o := range orgs {
		ms, err := h.app.store.ListOrgMembers(ctx, o.ID)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if seen[m.UserID] {
				continue
			}
			seen[m.UserID] = true
			u, err := h.app.store.GetUser(ctx, m.UserID)
			if err != nil {
				continue
			}
			out = append(out, u)
		}
	}
	return out, nil
}

// mappingPreview is who would gain, lose or change role in org if its
// mappings were on now, and whether that locks the org out.
func (h *Handler) mappingPreview(ctx context.Context, parentID string, o *store.Org) ([]provision.MappingChange, bool, error) {
	users, err := h.mappingCandidates(ctx, parentID)
	if err != nil {
		return nil, false, err
	}
	var changes []provision.MappingChange
	var after []store.Role
	for _, u := range users {
		cs, err := provision.PlanMappings(ctx, h.app.store, parentID, u, h.app.GroupPrefix, o.ID)
		if err != nil {
			return nil, false, err
		}
		changes = append(changes, cs...)
		m, err := h.app.store.GetMembership(ctx, o.ID, u.ID)
		role := store.Role("")
		if err == nil && m.Status != store.MemberInactive {
			role = m.Role
		}
		for _, c := range cs {
			role = c.To
		}
		after = append(after, role)
	}
	if changes == nil {
		changes = []provision.MappingChange{}
	}
	return changes, policy.LockoutRisk(after), nil
}

func (h *Handler) ownOrg(w http.ResponseWriter, r *http.Request, c *caller) (*store.Org, bool) {
	o, err := h.app.store.GetOrgBySlug(r.Context(), r.PathValue("org"))
	if err != nil || o.ParentID != c.ParentID {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such organization")
		return nil, false
	}
	return o, true
}

func (h *Handler) apiGetMappings(w http.ResponseWriter, r *http.Request, c *caller) {
	o, ok := h.ownOrg(w, r, c)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"org": o.Slug, "enabled": o.GroupMappings, "prefix": h.app.GroupPrefix,
		"group_names": policy.GroupNames(h.app.GroupPrefix, o.Slug)})
}

func (h *Handler) apiPreviewMappings(w http.ResponseWriter, r *http.Request, c *caller) {
	o, ok := h.ownOrg(w, r, c)
	if !ok {
		return
	}
	changes, lockout, err := h.mappingPreview(r.Context(), c.ParentID, o)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"org": o.Slug, "changes": changes, "lockout": lockout})
}

// apiPutMappings toggles Advanced Group Mappings for an org. Turning it on
// is refused while it would leave no owner, unless forced; when on, every
// member's access is recomputed from their groups at once.
func (h *Handler) apiPutMappings(w http.ResponseWriter, r *http.Request, c *caller) {
	o, ok := h.ownOrg(w, r, c)
	if !ok {
		return
	}
	var in struct {
		Enabled *bool `json:"enabled"`
		Force   bool  `json:"force"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if in.Enabled == nil {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", `send {"enabled": true} or {"enabled": false}`)
		return
	}
	ctx := r.Context()
	if *in.Enabled && !o.GroupMappings {
		_, lockout, err := h.mappingPreview(ctx, c.ParentID, o)
		if err != nil {
			h.apiStoreError(w, err)
			return
		}
		if lockout && !in.Force {
			writeJSONError(w, http.StatusConflict, "lockout",
				"no owner of "+o.Slug+" is in the "+h.app.GroupPrefix+o.Slug+"-owner group: assign owners in your IdP first, or send \"force\": true")
			return
		}
	}
	if _, err := h.app.store.UpdateOrg(ctx, o.ID, func(x *store.Org) error {
		x.GroupMappings = *in.Enabled
		return nil
	}); err != nil {
		h.apiStoreError(w, err)
		return
	}
	h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, OrgID: o.ID, Actor: c.Actor, Action: "mapping.toggle", Target: o.Slug,
		Outcome: "success", Details: map[string]string{"enabled": boolString(*in.Enabled), "forced": boolString(in.Force)}})
	applied := []provision.MappingChange{}
	if *in.Enabled {
		users, err := h.mappingCandidates(ctx, c.ParentID)
		if err != nil {
			h.apiStoreError(w, err)
			return
		}
		for _, u := range users {
			cs, err := provision.ApplyMappings(ctx, h.app.store, c.ParentID, u, h.app.GroupPrefix)
			if err != nil {
				h.apiStoreError(w, err)
				return
			}
			if len(cs) > 0 {
				h.app.auditMappings(r, c.ParentID, "toggle", cs)
				_ = h.app.sessions.Refresh(ctx, u.ID)
				applied = append(applied, cs...)
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"org": o.Slug, "enabled": *in.Enabled, "changes": applied,
		"group_names": policy.GroupNames(h.app.GroupPrefix, o.Slug)})
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

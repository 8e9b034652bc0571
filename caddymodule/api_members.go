package caddymodule

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ssogate/ssogate/mail"
	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/store"
)

type memberView struct {
	UserID      string                 `json:"user_id"`
	Email       string                 `json:"email"`
	Name        string                 `json:"name,omitempty"`
	Role        store.Role             `json:"role"`
	Status      store.MembershipStatus `json:"status"`
	Source      string                 `json:"source,omitempty"`
	CreatedAt   time.Time              `json:"created_at"`
	LastLoginAt time.Time              `json:"last_login_at,omitzero"`
}

// memberOrg resolves {org} (a slug) within the caller's parent org and the
// caller's role in it.
func (h *Handler) memberOrg(w http.ResponseWriter, r *http.Request, c *caller) (*store.Org, store.Role, bool) {
	o, err := h.app.store.GetOrgBySlug(r.Context(), r.PathValue("org"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && o.ParentID != c.ParentID) {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such organization")
		return nil, "", false
	}
	if err != nil {
		h.apiStoreError(w, err)
		return nil, "", false
	}
	role := c.roleIn(o)
	if c.Owner && !policy.CanAdminister(role) {
		// Owners of the parent org manage the members of all its orgs.
		role = store.RoleOwner
	}
	if role != store.RoleAdmin && !policy.CanAdminister(role) {
		writeJSONError(w, http.StatusForbidden, "forbidden", "only owners and admins of "+o.Slug+" manage its members")
		return nil, "", false
	}
	return o, role, true
}

func (h *Handler) apiListMembers(w http.ResponseWriter, r *http.Request, c *caller) {
	o, _, ok := h.memberOrg(w, r, c)
	if !ok {
		return
	}
	ms, err := h.app.store.ListOrgMembers(r.Context(), o.ID)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	out := make([]memberView, 0, len(ms))
	for _, m := range ms {
		u, err := h.app.store.GetUser(r.Context(), m.UserID)
		if err != nil {
			continue
		}
		out = append(out, memberView{UserID: u.ID, Email: u.Email, Name: u.Name, Role: m.Role, Status: m.Status,
			Source: m.Source, CreatedAt: m.CreatedAt, LastLoginAt: u.LastLoginAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"org": o.Slug, "members": out})
}

// apiInviteMember is "Add Member" before SSO: it invites by email.
func (h *Handler) apiInviteMember(w http.ResponseWriter, r *http.Request, c *caller) {
	o, actorRole, ok := h.memberOrg(w, r, c)
	if !ok {
		return
	}
	var in struct {
		Email string     `json:"email"`
		Role  store.Role `json:"role"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if in.Role == "" {
		in.Role = store.RoleMember
	}
	email, domain, err := policy.NormalizeEmail(in.Email)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid_email", err.Error())
		return
	}
	if !policy.MayManage(actorRole, policy.ActInvite, in.Role, "") {
		writeJSONError(w, http.StatusForbidden, "forbidden", "your role may not add a member with role "+string(in.Role))
		return
	}
	ctx := r.Context()
	capture, _, err := h.capture(r, domain)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	if !policy.NonSSOAllowed(capture) {
		writeJSONError(w, http.StatusConflict, "sso_enforced",
			domain+" signs in with single sign-on: add the person to the application in your identity provider (they join at first sign-in, or through SCIM)")
		return
	}
	u, err := h.app.store.GetUserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		u = &store.User{Email: email, CreatedBy: "invite"}
		if err = h.app.store.CreateUser(ctx, u); errors.Is(err, store.ErrAlreadyExists) {
			u, err = h.app.store.GetUserByEmail(ctx, email)
		}
	}
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	if m, err := h.app.store.GetMembership(ctx, o.ID, u.ID); err == nil {
		writeJSONError(w, http.StatusConflict, "member_exists", email+" is already "+string(m.Status)+" in "+o.Slug)
		return
	}
	m := &store.Membership{OrgID: o.ID, UserID: u.ID, Role: in.Role, Status: store.MemberInvited, Source: "invite", CreatedAt: h.app.store.Now().UTC()}
	if err := h.app.store.PutMembership(ctx, m); err != nil {
		h.apiStoreError(w, err)
		return
	}
	tok := newLinkToken()
	now := h.app.store.Now()
	if err := h.app.store.PutOneTimeToken(ctx, &store.OneTimeToken{Hash: hashKey(tok), Purpose: "invite", Email: email,
		ReturnTo: "/", CreatedAt: now, ExpiresAt: now.Add(inviteLinkTTL)}); err != nil {
		h.apiStoreError(w, err)
		return
	}
	msg, err := mail.Render("invite", mail.InviteData{Link: h.origin + h.BasePath + "/magic/" + tok, OrgName: o.Name,
		InviterEmail: strings.TrimPrefix(c.Actor, "api:"), SiteName: h.siteName()})
	if err == nil {
		msg.To = []string{email}
		err = h.app.mailer.Enqueue(msg)
	}
	if err != nil {
		writeJSONError(w, http.StatusServiceUnavailable, "mail_unavailable", "the invitation was saved but its mail could not be queued; invite again later")
		return
	}
	h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, OrgID: o.ID, Actor: c.Actor, Action: "member.invite", Target: email,
		Outcome: "success", Details: map[string]string{"role": string(in.Role)}})
	writeJSON(w, http.StatusCreated, memberView{UserID: u.ID, Email: email, Role: m.Role, Status: m.Status, Source: m.Source, CreatedAt: m.CreatedAt})
}

// memberTarget finds the member {user} (ID or email) of the org.
func (h *Handler) memberTarget(w http.ResponseWriter, r *http.Request, o *store.Org) (*store.User, *store.Membership, bool) {
	u, err := h.app.store.GetUserByRef(r.Context(), r.PathValue("user"))
	var m *store.Membership
	if err == nil {
		m, err = h.app.store.GetMembership(r.Context(), o.ID, u.ID)
	}
	if errors.Is(err, store.ErrNotFound) {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such member of "+o.Slug)
		return nil, nil, false
	}
	if err != nil {
		h.apiStoreError(w, err)
		return nil, nil, false
	}
	return u, m, true
}

// apiRemoveMember is "Remove from team": the membership goes and the
// person's sessions end at once.
func (h *Handler) apiRemoveMember(w http.ResponseWriter, r *http.Request, c *caller) {
	o, actorRole, ok := h.memberOrg(w, r, c)
	if !ok {
		return
	}
	u, m, ok := h.memberTarget(w, r, o)
	if !ok {
		return
	}
	if !policy.MayManage(actorRole, policy.ActRemove, m.Role, "") {
		writeJSONError(w, http.StatusForbidden, "forbidden", "your role may not remove a member with role "+string(m.Role))
		return
	}
	if err := h.app.store.DeleteMembership(r.Context(), o.ID, u.ID); err != nil {
		h.apiStoreError(w, err)
		return
	}
	// An active member's sessions end at once. Removing an invitation the
	// person never accepted only refreshes their identity: otherwise any
	// admin could sign anyone out everywhere by inviting and removing them.
	n := 0
	var err error
	if m.Status == store.MemberActive {
		n, err = h.app.sessions.RevokeUser(r.Context(), u.ID)
	} else {
		err = h.app.sessions.Refresh(r.Context(), u.ID)
	}
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, OrgID: o.ID, Actor: c.Actor, Action: "member.remove", Target: u.Email,
		Outcome: "success", Details: map[string]string{"role": string(m.Role), "sessions_ended": strconv.Itoa(n)}})
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) apiChangeRole(w http.ResponseWriter, r *http.Request, c *caller) {
	o, actorRole, ok := h.memberOrg(w, r, c)
	if !ok {
		return
	}
	u, m, ok := h.memberTarget(w, r, o)
	if !ok {
		return
	}
	var in struct {
		Role store.Role `json:"role"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if !policy.MayManage(actorRole, policy.ActChangeRole, m.Role, in.Role) {
		writeJSONError(w, http.StatusForbidden, "forbidden", "your role may not change "+string(m.Role)+" to "+string(in.Role))
		return
	}
	nm, err := h.app.store.UpdateMembership(r.Context(), o.ID, u.ID, func(x *store.Membership) error {
		if x.Role != m.Role {
			return errRoleChanged // a concurrent change: decide again
		}
		x.Role = in.Role
		return nil
	})
	if errors.Is(err, errRoleChanged) {
		writeJSONError(w, http.StatusConflict, "conflict", "the member's role changed meanwhile; try again")
		return
	}
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	// The new role reaches upstream headers on the next request.
	_ = h.app.sessions.Refresh(r.Context(), u.ID)
	h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, OrgID: o.ID, Actor: c.Actor, Action: "member.role", Target: u.Email,
		Outcome: "success", Details: map[string]string{"from": string(m.Role), "to": string(in.Role)}})
	writeJSON(w, http.StatusOK, memberView{UserID: u.ID, Email: u.Email, Name: u.Name, Role: nm.Role, Status: nm.Status, Source: nm.Source, CreatedAt: nm.CreatedAt})
}

var errRoleChanged = errors.New("role changed concurrently")

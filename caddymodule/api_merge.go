package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ssogate/ssogate/mail"
	"github.com/ssogate/ssogate/store"
)

// mergeProposalTTL is how long a merge proposal can be approved.
const mergeProposalTTL = 14 * 24 * time.Hour

// Sides of a merge proposal.
const (
	sideSurviving = "surviving"
	sideIncoming  = "incoming"
)

type mergeParentView struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// mergeOrgView is an org in a proposal: slug and ID only for orgs of the
// caller's own parent org, the name only for the other side's.
type mergeOrgView struct {
	ID   string `json:"id,omitempty"`
	Slug string `json:"slug,omitempty"`
	Name string `json:"name"`
}

type mergeView struct {
	ID                  string            `json:"id"`
	Status              store.MergeStatus `json:"status"`
	Side                string            `json:"side"` // the caller's side
	SurvivingParent     mergeParentView   `json:"surviving_parent"`
	IncomingParent      mergeParentView   `json:"incoming_parent"`
	Orgs                []mergeOrgView    `json:"orgs"`
	ProposedBy          string            `json:"proposed_by"`
	SurvivingApprovedBy string            `json:"surviving_approved_by,omitempty"`
	IncomingApprovedBy  string            `json:"incoming_approved_by,omitempty"`
	CreatedAt           time.Time         `json:"created_at"`
	ExpiresAt           time.Time         `json:"expires_at,omitzero"`
	DecidedAt           time.Time         `json:"decided_at,omitzero"`
}

// mergeExpired tells whether a proposal can no longer be approved.
func mergeExpired(p *store.MergeProposal, now time.Time) bool {
	return !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt)
}

// mergeSide is the caller's side of a proposal ("" if none).
func mergeSide(p *store.MergeProposal, c *caller) string {
	switch c.ParentID {
	case p.SurvivingParent:
		return sideSurviving
	case p.IncomingParent:
		return sideIncoming
	}
	return ""
}

func (h *Handler) mergeView(ctx context.Context, p *store.MergeProposal, c *caller) mergeView {
	v := mergeView{ID: p.ID, Status: p.Status, Side: mergeSide(p, c), ProposedBy: p.ProposedBy,
		SurvivingApprovedBy: p.SurvivingApprove, IncomingApprovedBy: p.IncomingApprove,
		CreatedAt: p.CreatedAt, ExpiresAt: p.ExpiresAt, DecidedAt: p.DecidedAt, Orgs: []mergeOrgView{}}
	if v.Status == store.MergeProposed && mergeExpired(p, h.app.store.Now()) {
		v.Status = store.MergeExpired
	}
	v.SurvivingParent = h.parentView(ctx, p.SurvivingParent)
	v.IncomingParent = h.parentView(ctx, p.IncomingParent)
	for _, id := range p.OrgIDs {
		o, err := h.app.store.GetOrg(ctx, id)
		if err != nil {
			continue
		}
		ov := mergeOrgView{Name: o.Name}
		if o.ParentID == c.ParentID {
			ov.ID, ov.Slug = o.ID, o.Slug
		}
		v.Orgs = append(v.Orgs, ov)
	}
	return v
}

func (h *Handler) parentView(ctx context.Context, id string) mergeParentView {
	v := mergeParentView{ID: id}
	if p, err := h.app.store.GetParentOrg(ctx, id); err == nil {
		v.Name = p.Name
	}
	return v
}

// apiCreateMergeProposal proposes that the parent org of incoming_org (with
// all its orgs) joins the caller's parent org, which survives. The owners
// and admins of both parent orgs are mailed.
func (h *Handler) apiCreateMergeProposal(w http.ResponseWriter, r *http.Request, c *caller) {
	var in struct {
		IncomingOrg string `json:"incoming_org"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if strings.TrimSpace(in.IncomingOrg) == "" {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "incoming_org (the slug of an org in the other parent organization) is required")
		return
	}
	ctx := r.Context()
	o, err := h.app.store.GetOrgBySlug(ctx, strings.TrimSpace(in.IncomingOrg))
	if errors.Is(err, store.ErrNotFound) {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such organization")
		return
	}
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	if o.ParentID == c.ParentID {
		writeJSONError(w, http.StatusBadRequest, "same_parent", o.Slug+" is already in your parent organization")
		return
	}
	now := h.app.store.Now().UTC()
	open, err := h.app.store.ListMergeProposals(ctx, c.ParentID)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	for _, p := range open {
		if p.Status == store.MergeProposed && !mergeExpired(&p, now) &&
			((p.SurvivingParent == c.ParentID && p.IncomingParent == o.ParentID) ||
				(p.SurvivingParent == o.ParentID && p.IncomingParent == c.ParentID)) {
			writeJSONError(w, http.StatusConflict, "proposal_exists", "an open merge proposal between these parent organizations exists: "+p.ID)
			return
		}
	}
	p := &store.MergeProposal{SurvivingParent: c.ParentID, IncomingParent: o.ParentID, ProposedBy: c.Actor,
		CreatedAt: now, ExpiresAt: now.Add(mergeProposalTTL)}
	if err := h.app.store.CreateMergeProposal(ctx, p); err != nil {
		h.apiStoreError(w, err)
		return
	}
	view := h.mergeView(ctx, p, c)
	sent, failed := h.mailMergeProposal(ctx, p, view, c)
	h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, Actor: c.Actor, Action: "merge.propose", Target: p.ID, Outcome: "success",
		Details: map[string]string{"incoming_parent": p.IncomingParent, "incoming_org": o.Slug, "orgs": strconv.Itoa(len(p.OrgIDs)),
			"mails_queued": strconv.Itoa(sent), "mails_failed": strconv.Itoa(failed)}})
	writeJSON(w, http.StatusCreated, map[string]any{"proposal": view, "notified": sent})
}

// mergeRecipients are the emails of every owner, primary owner and admin
// (active or invited) of any org of the parent org.
func (h *Handler) mergeRecipients(ctx context.Context, parentID string) ([]string, error) {
	orgs, err := h.app.store.ListOrgs(ctx, parentID)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, o := range orgs {
		ms, err := h.app.store.ListOrgMembers(ctx, o.ID)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if m.Status == store.MemberInactive || store.RoleRank(m.Role) < store.RoleRank(store.RoleAdmin) || seen[m.UserID] {
				continue
			}
			seen[m.UserID] = true
			u, err := h.app.store.GetUser(ctx, m.UserID)
			if err != nil {
				continue
			}
			out = append(out, u.Email)
		}
	}
	return out, nil
}

// mailMergeProposal mails the proposal, one message per recipient (the two
// parent orgs do not learn each other's administrators' addresses). It
// answers how many mails were queued and how many could not be.
func (h *Handler) mailMergeProposal(ctx context.Context, p *store.MergeProposal, v mergeView, c *caller) (sent, failed int) {
	proposedBy := c.Actor
	if name, ok := strings.CutPrefix(c.Actor, "api:"); ok {
		proposedBy = "API key \"" + name + "\" of " + v.SurvivingParent.Name
	}
	var to []string
	for _, parentID := range []string{p.SurvivingParent, p.IncomingParent} {
		emails, err := h.mergeRecipients(ctx, parentID)
		if err != nil {
			h.logger.Error("merge proposal: listing recipients", zap.String("proposal", p.ID), zap.Error(err))
			failed++
			continue
		}
		to = append(to, emails...)
	}
	slices.Sort(to)
	to = slices.Compact(to)
	for _, addr := range to {
		msg, err := mail.Render(mail.TemplateMergeProposal, mail.MergeProposalData{SurvivingName: v.SurvivingParent.Name,
			IncomingName: v.IncomingParent.Name, Link: h.origin + h.BasePath + "/settings/identity", ProposedBy: proposedBy})
		if err == nil {
			msg.To = []string{addr}
			err = h.app.mailer.Enqueue(msg)
		}
		if err != nil {
			h.logger.Error("merge proposal: mail not queued", zap.String("proposal", p.ID), zap.Error(err))
			failed++
			continue
		}
		sent++
	}
	return sent, failed
}

func (h *Handler) apiListMergeProposals(w http.ResponseWriter, r *http.Request, c *caller) {
	list, err := h.app.store.ListMergeProposals(r.Context(), c.ParentID)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	out := make([]mergeView, 0, len(list))
	for i := range list {
		out = append(out, h.mergeView(r.Context(), &list[i], c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"proposals": out})
}

// mergeProposal reads {id}, a proposal the caller's parent org is a side
// of (any other is "not found").
func (h *Handler) mergeProposal(w http.ResponseWriter, r *http.Request, c *caller) (*store.MergeProposal, bool) {
	p, err := h.app.store.GetMergeProposal(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && mergeSide(p, c) == "") {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such merge proposal")
		return nil, false
	}
	if err != nil {
		h.apiStoreError(w, err)
		return nil, false
	}
	return p, true
}

func (h *Handler) apiGetMergeProposal(w http.ResponseWriter, r *http.Request, c *caller) {
	p, ok := h.mergeProposal(w, r, c)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, h.mergeView(r.Context(), p, c))
}

// mergeStateError is a proposal that is not open for the change asked.
type mergeStateError struct {
	status  int
	code    string
	message string
}

func (e *mergeStateError) Error() string { return e.message }

func notProposed(p *store.MergeProposal) error {
	return &mergeStateError{http.StatusConflict, "not_proposed", "the merge proposal is " + string(p.Status) + ", not open any more"}
}

var errMergeExpired = &mergeStateError{http.StatusConflict, "expired", "the merge proposal has expired; propose again"}

// updateMerge changes an open proposal with fn in one compare-and-swap
// transaction. An expired proposal is marked expired and refused. On
// failure it has written the error response.
func (h *Handler) updateMerge(w http.ResponseWriter, r *http.Request, id string, fn func(*store.MergeProposal) error) (*store.MergeProposal, bool) {
	var expired bool
	p, err := h.app.store.UpdateMergeProposal(r.Context(), id, func(p *store.MergeProposal) error {
		expired = false
		if p.Status != store.MergeProposed {
			return notProposed(p)
		}
		if mergeExpired(p, h.app.store.Now()) {
			expired = true
			p.Status, p.DecidedAt = store.MergeExpired, p.ExpiresAt
			return nil
		}
		return fn(p)
	})
	var se *mergeStateError
	switch {
	case err == nil && expired:
		writeJSONError(w, errMergeExpired.status, errMergeExpired.code, errMergeExpired.message)
		return nil, false
	case err == nil:
		return p, true
	case errors.As(err, &se):
		writeJSONError(w, se.status, se.code, se.message)
	case errors.Is(err, store.ErrMergeConflict): // already applied
		writeJSONError(w, http.StatusConflict, "not_proposed", "the merge proposal is applied, not open any more")
	case errors.Is(err, store.ErrNotFound):
		writeJSONError(w, http.StatusNotFound, "not_found", "no such merge proposal")
	default:
		h.apiStoreError(w, err)
	}
	return nil, false
}

// apiApproveMergeProposal records the approval of the caller's side. Once
// both sides approved, the merge is applied at once, atomically; a
// conflict leaves everything as it was (the approvals stay, and approving
// again retries the merge).
func (h *Handler) apiApproveMergeProposal(w http.ResponseWriter, r *http.Request, c *caller) {
	p, ok := h.mergeProposal(w, r, c)
	if !ok {
		return
	}
	side := mergeSide(p, c)
	retry := false
	p, ok = h.updateMerge(w, r, p.ID, func(p *store.MergeProposal) error {
		retry = false
		mine, other := &p.SurvivingApprove, p.IncomingApprove
		if side == sideIncoming {
			mine, other = &p.IncomingApprove, p.SurvivingApprove
		}
		switch {
		case *mine == "":
			*mine = c.Actor
		case other != "":
			retry = true // both approved, the merge failed before: try again
		default:
			return &mergeStateError{http.StatusConflict, "already_approved", "your side approved already (" + *mine + "); waiting for the other parent organization"}
		}
		return nil
	})
	if !ok {
		return
	}
	ctx := r.Context()
	if !retry {
		h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, Actor: c.Actor, Action: "merge.approve", Target: p.ID, Outcome: "success",
			Details: map[string]string{"side": side}})
	}
	if p.SurvivingApprove == "" || p.IncomingApprove == "" {
		writeJSON(w, http.StatusOK, h.mergeView(ctx, p, c))
		return
	}
	var applied *store.MergeProposal
	err := h.newIncomingOrgs(ctx, p)
	if err == nil {
		applied, err = h.app.store.ApplyMerge(ctx, p.ID, h.app.store.Now().UTC())
	}
	if errors.Is(err, store.ErrMergeConflict) {
		// A concurrent approval may have applied it already.
		if cur, gerr := h.app.store.GetMergeProposal(ctx, p.ID); gerr == nil && cur.Status == store.MergeApplied {
			writeJSON(w, http.StatusOK, h.mergeView(ctx, cur, c))
			return
		}
		reason := mergeConflictReason(err)
		h.app.audit(r, &store.AuditEvent{ParentID: p.SurvivingParent, Actor: c.Actor, Action: "merge.apply", Target: p.ID, Outcome: "failure",
			Reason: "merge_conflict", Details: map[string]string{"incoming_parent": p.IncomingParent, "conflict": reason}})
		writeJSONError(w, http.StatusConflict, "merge_conflict", "the merge was not applied and nothing changed: "+reason)
		return
	}
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	refreshed := h.refreshMerged(ctx, applied)
	h.app.audit(r, &store.AuditEvent{ParentID: applied.SurvivingParent, Actor: c.Actor, Action: "merge.apply", Target: applied.ID, Outcome: "success",
		Details: map[string]string{"incoming_parent": applied.IncomingParent, "orgs": strconv.Itoa(len(applied.OrgIDs)),
			"sessions_refreshed": strconv.Itoa(refreshed)}})
	writeJSON(w, http.StatusOK, h.mergeView(ctx, applied, c))
}

// newIncomingOrgs refuses a merge that would leave behind, in an emptied
// parent org, an org that joined the incoming parent org after the proposal
// was made (a proposal lists the orgs that move).
func (h *Handler) newIncomingOrgs(ctx context.Context, p *store.MergeProposal) error {
	orgs, err := h.app.store.ListOrgs(ctx, p.IncomingParent)
	if err != nil {
		return err
	}
	for _, o := range orgs {
		if !slices.Contains(p.OrgIDs, o.ID) {
			return fmt.Errorf("%w: %s joined the incoming parent organization after the proposal was made; decline it and propose again",
				store.ErrMergeConflict, o.Name)
		}
	}
	return nil
}

// mergeConflictReason is what stood in the way of a merge, without the
// store's wrapping.
func mergeConflictReason(err error) string {
	msg := err.Error()
	marker := store.ErrMergeConflict.Error() + ": "
	if i := strings.LastIndex(msg, marker); i >= 0 {
		return msg[i+len(marker):]
	}
	return msg
}

// refreshMerged makes the members of the moved orgs re-read their
// identity at their next request, and answers how many users that was.
func (h *Handler) refreshMerged(ctx context.Context, p *store.MergeProposal) int {
	seen := map[string]bool{}
	for _, orgID := range p.OrgIDs {
		ms, err := h.app.store.ListOrgMembers(ctx, orgID)
		if err != nil {
			h.logger.Error("merge: listing members to refresh", zap.String("org", orgID), zap.Error(err))
			continue
		}
		for _, m := range ms {
			if seen[m.UserID] {
				continue
			}
			seen[m.UserID] = true
			if err := h.app.sessions.Refresh(ctx, m.UserID); err != nil {
				h.logger.Error("merge: refreshing sessions", zap.String("user_id", m.UserID), zap.Error(err))
			}
		}
	}
	return len(seen)
}

// apiDeclineMergeProposal ends an open proposal; either side may.
func (h *Handler) apiDeclineMergeProposal(w http.ResponseWriter, r *http.Request, c *caller) {
	h.endMerge(w, r, c, store.MergeDeclined, "merge.decline", false)
}

// apiWithdrawMergeProposal ends an open proposal; only the surviving side
// (the proposer's) may.
func (h *Handler) apiWithdrawMergeProposal(w http.ResponseWriter, r *http.Request, c *caller) {
	h.endMerge(w, r, c, store.MergeWithdrawn, "merge.withdraw", true)
}

func (h *Handler) endMerge(w http.ResponseWriter, r *http.Request, c *caller, status store.MergeStatus, action string, survivingOnly bool) {
	p, ok := h.mergeProposal(w, r, c)
	if !ok {
		return
	}
	side := mergeSide(p, c)
	if survivingOnly && side != sideSurviving {
		writeJSONError(w, http.StatusForbidden, "forbidden", "only the proposing (surviving) parent organization may withdraw a proposal; decline it instead")
		return
	}
	p, ok = h.updateMerge(w, r, p.ID, func(p *store.MergeProposal) error {
		p.Status, p.DecidedAt = status, h.app.store.Now().UTC()
		return nil
	})
	if !ok {
		return
	}
	h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, Actor: c.Actor, Action: action, Target: p.ID, Outcome: "success",
		Details: map[string]string{"side": side}})
	writeJSON(w, http.StatusOK, h.mergeView(r.Context(), p, c))
}

package caddymodule

import (
	"encoding/base32"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/ssogate/ssogate/store"
)

// Audit log API limits.
const (
	auditDefaultPage = 50
	auditMaxPage     = 500
	// auditMaxFilter bounds the action and actor prefixes (an email is at
	// most 254 characters).
	auditMaxFilter = 256
)

// auditEventView is one audit event as the admin API shows it.
type auditEventView struct {
	ID       string            `json:"id"`
	Time     string            `json:"time"` // RFC 3339, UTC
	ParentID string            `json:"parent_id"`
	OrgID    string            `json:"org_id,omitempty"`
	Actor    string            `json:"actor"`
	Action   string            `json:"action"`
	Target   string            `json:"target,omitempty"`
	Outcome  string            `json:"outcome"`
	Reason   string            `json:"reason,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
	Address  string            `json:"address,omitempty"` // the client address the change came from
}

// apiListAudit answers GET /api/v1/audit-events: the caller's parent org's
// events, newest first unless order=oldest, filtered by action and actor
// prefix, one page at a time. next_cursor is "" on the last page; a
// filtered page may hold fewer than limit events while it is not.
func (h *Handler) apiListAudit(w http.ResponseWriter, r *http.Request, c *caller) {
	q := r.URL.Query()
	for name, vs := range q {
		if len(vs) > 1 {
			writeJSONError(w, http.StatusBadRequest, "invalid_request", "give "+strconv.Quote(name)+" at most once")
			return
		}
	}
	aq := store.AuditQuery{ParentID: c.ParentID, Limit: auditDefaultPage, NewestFirst: true}
	switch q.Get("order") {
	case "", "newest":
	case "oldest":
		aq.NewestFirst = false
	default:
		writeJSONError(w, http.StatusBadRequest, "invalid_order", `order must be "newest" or "oldest"`)
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > auditMaxPage {
			writeJSONError(w, http.StatusBadRequest, "invalid_limit", "limit must be a whole number from 1 to "+strconv.Itoa(auditMaxPage))
			return
		}
		aq.Limit = n
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"action", &aq.Action}, {"actor", &aq.Actor}} {
		v := q.Get(f.name)
		if len(v) > auditMaxFilter || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			writeJSONError(w, http.StatusBadRequest, "invalid_filter",
				f.name+" must be a prefix of at most "+strconv.Itoa(auditMaxFilter)+" bytes without control characters")
			return
		}
		*f.dst = v
	}
	if v := q.Get("cursor"); v != "" {
		after, newest, ok := parseAuditCursor(v)
		if !ok {
			writeJSONError(w, http.StatusBadRequest, "invalid_cursor", "cursor is not one this API gave out; start again without it")
			return
		}
		if newest != aq.NewestFirst {
			writeJSONError(w, http.StatusBadRequest, "invalid_cursor", "cursor belongs to a listing in the other order; use the same order as the page it came from")
			return
		}
		aq.After = after
	}

	events, next, err := h.app.store.ListAudit(r.Context(), aq)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	out := make([]auditEventView, 0, len(events))
	for _, e := range events {
		out = append(out, auditEventView{ID: e.ID, Time: e.Time.UTC().Format(timeFormat), ParentID: e.ParentID, OrgID: e.OrgID,
			Actor: e.Actor, Action: e.Action, Target: e.Target, Outcome: e.Outcome, Reason: e.Reason,
			Details: e.Details, Address: e.RemoteIP})
	}
	cursor := ""
	if next != "" {
		cursor = auditCursor(next, aq.NewestFirst)
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out, "next_cursor": cursor})
}

// The cursor is opaque to clients: base64url of "n:" (newest first) or
// "o:" (oldest first) and the ID of the last event read. It only positions
// a listing inside the caller's own parent org, so a forged cursor reveals
// nothing; the order is in it so a cursor is not used the other way round.
func auditCursor(id string, newest bool) string {
	prefix := "o:"
	if newest {
		prefix = "n:"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(prefix + id))
}

// auditIDEncoding is the store's event ID alphabet (lower-case base32hex,
// 16 bytes): a cursor's ID is checked before it reaches the store.
var auditIDEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

func parseAuditCursor(v string) (id string, newest, ok bool) {
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return "", false, false
	}
	order, id, found := strings.Cut(string(raw), ":")
	if !found || (order != "n" && order != "o") {
		return "", false, false
	}
	b, err := auditIDEncoding.DecodeString(id)
	if err != nil || len(b) != 16 || auditIDEncoding.EncodeToString(b) != id {
		return "", false, false
	}
	return id, order == "n", true
}

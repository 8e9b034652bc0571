package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Audit events are kept under their time-sortable ID and listed through
// index sets, two per scope: one whose members sort oldest first and one
// whose members sort newest first, because IndexRange only ascends.
// Members are hex of the ID's 16 bytes (time, then randomness), or of their
// bitwise complement for the newest-first index: hex sorts in byte order
// whatever alphabet the ID itself uses.
const (
	kAudit        = "audit/"          // + id
	kAuditAsc     = "idx/audit/asc/"  // index: + scope -> hex(id bytes)
	kAuditDesc    = "idx/audit/desc/" // index: + scope -> hex(^id bytes)
	auditGlobal   = "all"             // scope of every event
	auditByParent = "p/"              // scope: + parentID
)

const (
	auditDefaultLimit = 50
	auditMaxLimit     = 500
	// auditScanFactor bounds how many index members one filtered page may
	// read (limit × factor), so a rare filter cannot make one call scan the
	// whole log; the caller pages on with the returned cursor.
	auditScanFactor = 20
)

// AuditQuery selects audit events for ListAudit.
type AuditQuery struct {
	// ParentID limits the list to one parent org's events ("" = all).
	ParentID string
	// Action and Actor keep only events whose action or actor starts with
	// them ("" = any).
	Action string
	Actor  string
	// After is the cursor: the next value of the previous page ("" = from
	// the start), used with the same query.
	After string
	// Limit is the page size: default 50, at most 500.
	Limit int
	// NewestFirst lists the latest events first.
	NewestFirst bool
}

// AppendAudit records an event. ID and Time are assigned if empty.
func (s *Store) AppendAudit(ctx context.Context, e *AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = s.Now()
	}
	if e.ID == "" {
		e.ID = newSortableID(e.Time)
	}
	asc, desc, err := auditMembers(e.ID)
	if err != nil {
		return fmt.Errorf("store: appending audit event: %w", err)
	}
	scopes := []string{auditGlobal}
	if e.ParentID != "" {
		scopes = append(scopes, auditByParent+e.ParentID)
	}
	err = s.b.Update(ctx, func(tx Txn) error {
		if err := create(tx, kAudit+e.ID, e, 0); err != nil {
			return err
		}
		for _, scope := range scopes {
			if err := tx.IndexAdd(kAuditAsc+scope, asc); err != nil {
				return err
			}
			if err := tx.IndexAdd(kAuditDesc+scope, desc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: appending audit event: %w", err)
	}
	return nil
}

// ListAudit returns one page of events matching q and the cursor of the
// next page, "" when there is none. A filtered page may hold fewer than
// Limit events while next is not "": keep paging until next is "".
func (s *Store) ListAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, string, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = auditDefaultLimit
	}
	limit = min(limit, auditMaxLimit)
	index := kAuditAsc
	if q.NewestFirst {
		index = kAuditDesc
	}
	if q.ParentID != "" {
		index += auditByParent + q.ParentID
	} else {
		index += auditGlobal
	}
	after := ""
	if q.After != "" {
		asc, desc, err := auditMembers(q.After)
		if err != nil {
			return nil, "", fmt.Errorf("store: listing audit events: bad cursor: %w", err)
		}
		after = asc
		if q.NewestFirst {
			after = desc
		}
	}

	var out []AuditEvent
	var next string
	err := s.b.View(ctx, func(tx Reader) error {
		out, next = out[:0], ""
		budget := limit * auditScanFactor
		cursor := after
		for budget > 0 {
			// One more than needed tells whether another page exists.
			batch := min(limit+1-len(out), budget)
			members, err := tx.IndexRange(index, cursor, batch)
			if err != nil {
				return err
			}
			for _, m := range members {
				budget--
				cursor = m
				e, err := readAuditMember(tx, m, q.NewestFirst)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if !strings.HasPrefix(e.Action, q.Action) || !strings.HasPrefix(e.Actor, q.Actor) {
					continue
				}
				if len(out) == limit {
					// A further match exists: the page is full.
					next = out[limit-1].ID
					return nil
				}
				out = append(out, *e)
			}
			if len(members) < batch {
				return nil // index exhausted
			}
		}
		// Out of scan budget: let the caller resume after what was read.
		if cursor != after {
			id, err := auditIDFromMember(cursor, q.NewestFirst)
			if err != nil {
				return err
			}
			next = id
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: listing audit events: %w", err)
	}
	return out, next, nil
}

func readAuditMember(tx Reader, member string, desc bool) (*AuditEvent, error) {
	id, err := auditIDFromMember(member, desc)
	if err != nil {
		return nil, err
	}
	var e AuditEvent
	if err := getJSON(tx, kAudit+id, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// auditMembers returns an event ID's members in the oldest-first and the
// newest-first index.
func auditMembers(id string) (asc, desc string, err error) {
	raw, err := idEncoding.DecodeString(id)
	if err != nil || len(raw) != 16 {
		return "", "", fmt.Errorf("invalid audit event ID %q", id)
	}
	asc = hex.EncodeToString(raw)
	for i := range raw {
		raw[i] = ^raw[i]
	}
	return asc, hex.EncodeToString(raw), nil
}

// auditIDFromMember inverts auditMembers.
func auditIDFromMember(member string, desc bool) (string, error) {
	raw, err := hex.DecodeString(member)
	if err != nil || len(raw) != 16 {
		return "", fmt.Errorf("corrupt audit index member %q", member)
	}
	if desc {
		for i := range raw {
			raw[i] = ^raw[i]
		}
	}
	return idEncoding.EncodeToString(raw), nil
}

package session

import (
	"context"
	"fmt"
	"sync/atomic"

	"go.uber.org/zap"
)

// Logout ends the session behind a cookie value (if any).
func (m *Manager) Logout(ctx context.Context, cookie string) error {
	sid, err := parseCookieValue(m.key, cookie)
	if err != nil {
		return nil // nothing to end
	}
	return m.RevokeSession(ctx, sid)
}

// revokedTotal counts sessions ended by revocation in this process.
var revokedTotal atomic.Int64

// RevokedTotal is how many sessions this process has revoked (a counter
// for metrics).
func RevokedTotal() int64 { return revokedTotal.Load() }

// RevokeSession ends one session everywhere.
func (m *Manager) RevokeSession(ctx context.Context, storeID string) error {
	old, err := m.st.DeleteSession(ctx, storeID)
	if err != nil {
		return fmt.Errorf("session: revoking session: %w", err)
	}
	if old != nil {
		revokedTotal.Add(1)
	}
	m.cache.dropSession(storeID)
	return m.publish(ctx, "s:"+storeID)
}

// RevokeUser ends every session of a user everywhere and returns how many
// sessions the store held.
func (m *Manager) RevokeUser(ctx context.Context, userID string) (int, error) {
	ids, err := m.st.DeleteUserSessions(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("session: revoking sessions of %s: %w", userID, err)
	}
	revokedTotal.Add(int64(len(ids)))
	m.cache.dropUser(userID)
	// Publish even when the store held none: another instance may still be
	// caching a session whose record just expired.
	return len(ids), m.publish(ctx, "u:"+userID)
}

// RevokeParent ends the sessions of every member of every org of a parent
// org (turning SSO on).
func (m *Manager) RevokeParent(ctx context.Context, parentID string) (int, error) {
	orgs, err := m.st.ListOrgs(ctx, parentID)
	if err != nil {
		return 0, fmt.Errorf("session: listing orgs of %s: %w", parentID, err)
	}
	users := map[string]struct{}{}
	for _, o := range orgs {
		ms, err := m.st.ListOrgMembers(ctx, o.ID)
		if err != nil {
			return 0, fmt.Errorf("session: listing members of %s: %w", o.ID, err)
		}
		for _, ms := range ms {
			users[ms.UserID] = struct{}{}
		}
	}
	total := 0
	for uid := range users {
		n, err := m.RevokeUser(ctx, uid)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// Refresh drops a user's cached identity so the next request re-reads
// memberships and roles, without ending the session.
func (m *Manager) Refresh(ctx context.Context, userID string) error {
	// Dropping the cache entries is enough: the store session stays valid,
	// so the next request reloads the identity.
	m.cache.dropUser(userID)
	return m.publish(ctx, "u:"+userID)
}

func (m *Manager) publish(ctx context.Context, msg string) error {
	if err := m.st.Backend().Publish(ctx, revokeChannel, msg); err != nil {
		// The store record is gone already; other instances will notice at
		// their next recheck. Say so loudly.
		m.log.Error("publishing session revocation", zap.String("message", msg), zap.Error(err))
		return fmt.Errorf("session: publishing revocation: %w", err)
	}
	return nil
}

// DropCache forgets every cached session on this instance (after the store
// or the revocation channel was unreachable and messages may be lost).
func (m *Manager) DropCache() { m.cache.dropAll() }

package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// sessionTTL is how long the backend keeps a session record: until the
// sooner of its absolute expiry and its idle deadline.
func sessionTTL(s *Session, now time.Time) time.Duration {
	end := s.ExpiresAt
	if s.Idle > 0 {
		if idleEnd := s.LastSeen.Add(s.Idle); idleEnd.Before(end) {
			end = idleEnd
		}
	}
	return end.Sub(now)
}

// CreateSession stores a new session and indexes it under its user.
func (s *Store) CreateSession(ctx context.Context, sess *Session) error {
	ttl := sessionTTL(sess, s.Now())
	if ttl <= 0 {
		return fmt.Errorf("store: session already expired")
	}
	return s.b.Update(ctx, func(tx Txn) error {
		if err := create(tx, kSession+sess.ID, sess, ttl); err != nil {
			return err
		}
		return tx.IndexAdd(kUserSessions+sess.UserID, sess.ID)
	})
}

// GetSession reads a live session (the cache-miss path: one round trip).
func (s *Store) GetSession(ctx context.Context, id string) (*Session, error) {
	raw, err := s.b.Get(ctx, kSession+id)
	if err != nil {
		return nil, err
	}
	var sess Session
	if err := json.Unmarshal(raw, &sess); err != nil {
		return nil, fmt.Errorf("store: decoding session: %w", err)
	}
	now := s.Now()
	if !now.Before(sess.ExpiresAt) || (sess.Idle > 0 && !now.Before(sess.LastSeen.Add(sess.Idle))) {
		return nil, ErrNotFound
	}
	return &sess, nil
}

// TouchSession records activity, extending the idle deadline.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	return s.b.Update(ctx, func(tx Txn) error {
		var sess Session
		if err := getJSON(tx, kSession+id, &sess); err != nil {
			return err
		}
		if at.After(sess.LastSeen) {
			sess.LastSeen = at
		}
		ttl := sessionTTL(&sess, s.Now())
		if ttl <= 0 {
			return ErrNotFound
		}
		return putJSON(tx, kSession+id, &sess, ttl)
	})
}

// DeleteSession removes one session. Missing sessions are not an error.
func (s *Store) DeleteSession(ctx context.Context, id string) (*Session, error) {
	var out *Session
	err := s.b.Update(ctx, func(tx Txn) error {
		var sess Session
		if err := getJSON(tx, kSession+id, &sess); err != nil {
			if errors.Is(err, ErrNotFound) {
				out = nil
				return nil
			}
			return err
		}
		out = &sess
		if err := tx.Delete(kSession + id); err != nil {
			return err
		}
		return tx.IndexRemove(kUserSessions+sess.UserID, id)
	})
	return out, err
}

// UserSessions lists a user's live sessions.
func (s *Store) UserSessions(ctx context.Context, userID string) ([]Session, error) {
	var out []Session
	err := s.b.View(ctx, func(tx Reader) error {
		out = out[:0]
		ids, err := tx.IndexRange(kUserSessions+userID, "", 0)
		if err != nil {
			return err
		}
		now := s.Now()
		for _, id := range ids {
			var sess Session
			if err := getJSON(tx, kSession+id, &sess); err != nil {
				if errors.Is(err, ErrNotFound) {
					continue
				}
				return err
			}
			if sessionTTL(&sess, now) <= 0 {
				continue
			}
			out = append(out, sess)
		}
		return nil
	})
	return out, err
}

// DeleteUserSessions removes every session of a user and returns their IDs,
// so the caller can tell other instances to drop them from caches.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) ([]string, error) {
	var ids []string
	err := s.b.Update(ctx, func(tx Txn) error {
		var err error
		ids, err = tx.IndexRange(kUserSessions+userID, "", 0)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := tx.Delete(kSession + id); err != nil {
				return err
			}
			if err := tx.IndexRemove(kUserSessions+userID, id); err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}

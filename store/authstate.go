package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Short-lived sign-in state: pending auth requests, the assertion replay
// cache and one-time tokens. Every record carries its own deadline and is
// checked against s.Now as well as expired by the backend, so an injected
// clock behaves the same on every backend and a lagging expiry never lets
// stale state through.
const (
	kPendingAuth  = "pending/" // + id
	kReplay       = "replay/"  // + connectionID + "/" + hex sha256(assertionID)
	kOneTimeToken = "otk/"     // + token hash
)

const (
	// replayMargin keeps a replay record past the assertion's deadline, to
	// cover clock skew between gateway instances and the backend.
	replayMargin = 5 * time.Minute
	// replayMinTTL is the least time a replay record is kept.
	replayMinTTL = time.Minute
	// replayDefaultTTL applies when the assertion names no deadline.
	replayDefaultTTL = 24 * time.Hour
)

// OneTimeToken is a single-use bearer token (email sign-in link, invite).
// Only the hash of the token is stored; the token itself goes out by mail.
type OneTimeToken struct {
	Hash       string            `json:"hash"` // HashSecret of the token; the key
	Purpose    string            `json:"purpose"`
	Email      string            `json:"email,omitempty"`
	BrowserKey string            `json:"browser_key,omitempty"`
	ReturnTo   string            `json:"return_to,omitempty"`
	Data       map[string]string `json:"data,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	ExpiresAt  time.Time         `json:"expires_at"`
}

// PutPendingAuth stores a sign-in in progress until p.ExpiresAt. It is
// ErrAlreadyExists if a pending auth with that ID exists.
func (s *Store) PutPendingAuth(ctx context.Context, p *PendingAuth) error {
	if p.ID == "" {
		return fmt.Errorf("store: pending auth without ID")
	}
	now := s.Now()
	if p.CreatedAt.IsZero() {
		p.CreatedAt = now
	}
	ttl := p.ExpiresAt.Sub(now)
	if ttl <= 0 {
		return fmt.Errorf("store: pending auth %q already expired", p.ID)
	}
	err := s.b.Update(ctx, func(tx Txn) error {
		return create(tx, kPendingAuth+p.ID, p, ttl)
	})
	if err != nil {
		return fmt.Errorf("store: putting pending auth: %w", err)
	}
	return nil
}

// TakePendingAuth reads and deletes a pending auth in one step, so each
// can finish at most one sign-in: a second Take is ErrNotFound.
func (s *Store) TakePendingAuth(ctx context.Context, id string) (*PendingAuth, error) {
	var p PendingAuth
	if err := s.take(ctx, kPendingAuth+id, &p, func() time.Time { return p.ExpiresAt }); err != nil {
		return nil, fmt.Errorf("store: taking pending auth: %w", err)
	}
	return &p, nil
}

// PeekPendingAuth reads a pending auth without consuming it (SAML needs
// the issued request IDs before it can parse the response).
func (s *Store) PeekPendingAuth(ctx context.Context, id string) (*PendingAuth, error) {
	if id == "" {
		return nil, fmt.Errorf("store: peeking pending auth: %w", ErrNotFound)
	}
	raw, err := s.b.Get(ctx, kPendingAuth+id)
	if err != nil {
		return nil, fmt.Errorf("store: peeking pending auth: %w", err)
	}
	var p PendingAuth
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("store: decoding pending auth: %w", err)
	}
	if !s.Now().Before(p.ExpiresAt) {
		return nil, fmt.Errorf("store: peeking pending auth: %w", ErrNotFound)
	}
	return &p, nil
}

// RememberAssertion records that connectionID's IdP issued assertionID, so
// it is accepted once: it is ErrAlreadyExists when the assertion was seen
// before. IDs are only unique per issuer, so the record is per connection.
// The record lasts until notOnOrAfter plus a margin. Any error means the
// assertion must be refused.
func (s *Store) RememberAssertion(ctx context.Context, connectionID, assertionID string, notOnOrAfter time.Time) error {
	if connectionID == "" || assertionID == "" {
		return fmt.Errorf("store: remembering assertion: empty connection or assertion ID")
	}
	now := s.Now()
	if notOnOrAfter.IsZero() {
		notOnOrAfter = now.Add(replayDefaultTTL)
	}
	until := notOnOrAfter.Add(replayMargin)
	ttl := max(until.Sub(now), replayMinTTL)
	until = now.Add(ttl)
	// Hashing bounds the key length whatever the IdP sends; the hash has a
	// fixed length, so the connection ID before it cannot be confused.
	sum := sha256.Sum256([]byte(assertionID))
	key := kReplay + connectionID + "/" + hex.EncodeToString(sum[:])
	err := s.b.Update(ctx, func(tx Txn) error {
		raw, err := tx.Get(key)
		switch {
		case err == nil:
			// A record the backend has not expired yet but whose deadline
			// has passed no longer protects anything; it may be replaced.
			if n, perr := strconv.ParseInt(string(raw), 10, 64); perr != nil || now.Before(time.Unix(0, n)) {
				return ErrAlreadyExists
			}
		case !errors.Is(err, ErrNotFound):
			return err
		}
		return tx.Put(key, []byte(strconv.FormatInt(until.UnixNano(), 10)), ttl)
	})
	if err != nil {
		return fmt.Errorf("store: remembering assertion %q: %w", assertionID, err)
	}
	return nil
}

// PutOneTimeToken stores a single-use token under its hash until
// t.ExpiresAt. It is ErrAlreadyExists if the hash is taken.
func (s *Store) PutOneTimeToken(ctx context.Context, t *OneTimeToken) error {
	if t.Hash == "" {
		return fmt.Errorf("store: one-time token without hash")
	}
	now := s.Now()
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	ttl := t.ExpiresAt.Sub(now)
	if ttl <= 0 {
		return fmt.Errorf("store: one-time token already expired")
	}
	err := s.b.Update(ctx, func(tx Txn) error {
		return create(tx, kOneTimeToken+t.Hash, t, ttl)
	})
	if err != nil {
		return fmt.Errorf("store: putting one-time token: %w", err)
	}
	return nil
}

// TakeOneTimeToken reads and deletes the token with that hash in one step:
// it can be used once, and a second Take is ErrNotFound.
func (s *Store) TakeOneTimeToken(ctx context.Context, hash string) (*OneTimeToken, error) {
	var t OneTimeToken
	if err := s.take(ctx, kOneTimeToken+hash, &t, func() time.Time { return t.ExpiresAt }); err != nil {
		return nil, fmt.Errorf("store: taking one-time token: %w", err)
	}
	return &t, nil
}

// take decodes key into v and deletes it in one transaction. A record
// whose deadline (read from v after decoding) has passed is deleted too
// but reported as ErrNotFound.
func (s *Store) take(ctx context.Context, key string, v any, deadline func() time.Time) error {
	if key == kPendingAuth || key == kOneTimeToken {
		return ErrNotFound // empty ID or hash
	}
	var expired bool
	err := s.b.Update(ctx, func(tx Txn) error {
		if err := getJSON(tx, key, v); err != nil {
			return err
		}
		expired = !s.Now().Before(deadline())
		return tx.Delete(key)
	})
	if err != nil {
		return err
	}
	if expired {
		return ErrNotFound
	}
	return nil
}

// PeekOneTimeToken reads a live one-time token without using it, so
// callers can check who presents it before TakeOneTimeToken.
func (s *Store) PeekOneTimeToken(ctx context.Context, hash string) (*OneTimeToken, error) {
	if hash == "" {
		return nil, fmt.Errorf("store: peeking one-time token: %w", ErrNotFound)
	}
	raw, err := s.b.Get(ctx, kOneTimeToken+hash)
	if err != nil {
		return nil, fmt.Errorf("store: peeking one-time token: %w", err)
	}
	var t OneTimeToken
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("store: decoding one-time token: %w", err)
	}
	if !s.Now().Before(t.ExpiresAt) {
		return nil, fmt.Errorf("store: peeking one-time token: %w", ErrNotFound)
	}
	return &t, nil
}

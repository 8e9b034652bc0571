package store

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Store is the typed directory over a Backend. Every rule about uniqueness
// and atomicity lives here, once, so the bolt and Redis backends behave the
// same by construction; the conformance suite in storetest proves it.
type Store struct {
	b Backend
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// New wraps a backend.
func New(b Backend) *Store {
	return &Store{b: b, Now: time.Now}
}

// Backend returns the underlying backend (for pub/sub and health).
func (s *Store) Backend() Backend { return s.b }

// Ping checks the backend.
func (s *Store) Ping(ctx context.Context) error { return s.b.Ping(ctx) }

// Close closes the backend.
func (s *Store) Close() error { return s.b.Close() }

// Lower-case base32hex: its alphabet is in ASCII order, so encoded IDs
// sort like the bytes they encode (newSortableID relies on it).
var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// NewID returns a random 128-bit identifier (26 lower-case base32hex chars).
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Errorf("store: reading randomness: %w", err))
	}
	return idEncoding.EncodeToString(b[:])
}

// IDFromBytes encodes 16 bytes as an ID of the form NewID makes (for IDs
// derived from a key, such as connection IDs handed out before creation).
func IDFromBytes(b [16]byte) string { return idEncoding.EncodeToString(b[:]) }

// newSortableID returns an ID that sorts by time t, then randomly.
func newSortableID(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixNano()))
	if _, err := rand.Read(b[8:]); err != nil {
		panic(fmt.Errorf("store: reading randomness: %w", err))
	}
	return idEncoding.EncodeToString(b[:])
}

func getJSON(r Reader, key string, v any) error {
	raw, err := r.Get(key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("store: decoding %q: %w", key, err)
	}
	return nil
}

func putJSON(tx Txn, key string, v any, ttl time.Duration) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encoding %q: %w", key, err)
	}
	return tx.Put(key, raw, ttl)
}

// create puts key only if it does not exist yet.
func create(tx Txn, key string, v any, ttl time.Duration) error {
	if _, err := tx.Get(key); err == nil {
		return ErrAlreadyExists
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	return putJSON(tx, key, v, ttl)
}

// Key layout. One place, so backends and tools agree.
const (
	kSession      = "session/"      // + id
	kUserSessions = "idx/usersess/" // index: + userID -> session ids
)

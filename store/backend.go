package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors shared by every backend and the directory layer.
var (
	// ErrNotFound means the key, record or index member does not exist (or has expired).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means a create hit a key or unique name that is taken.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict means an optimistic transaction kept losing races and gave up.
	ErrConflict = errors.New("transaction conflict")
	// ErrUnavailable wraps any failure to reach the backing store; callers fail closed.
	ErrUnavailable = errors.New("store unavailable")
)

// Backend is the bytes-level storage a directory runs on: a transactional
// key/value space with expiring keys, ordered index sets, and a pub/sub channel.
// The bolt and Redis backends implement only this; the typed directory
// (Store) and every rule about uniqueness and atomicity live above it, once.
//
// Keys and index names are opaque strings chosen by the directory layer.
// Values are opaque bytes.
type Backend interface {
	// Get reads one key outside a transaction (the hot path). Expired keys
	// are ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)

	// Update runs fn in a serialisable read-write transaction. All writes
	// made through the Txn apply together or not at all. fn may be called
	// more than once (optimistic backends retry on conflict), so it must not
	// have side effects outside the Txn. If fn returns an error nothing is
	// written and the error is returned unchanged.
	Update(ctx context.Context, fn func(tx Txn) error) error

	// View runs fn in a read-only transaction with a consistent snapshot
	// where the backend offers one.
	View(ctx context.Context, fn func(tx Reader) error) error

	// Publish sends msg to every subscriber of channel, on every instance
	// that shares this backend. Delivery is at most once.
	Publish(ctx context.Context, channel, msg string) error

	// Subscribe delivers messages published on channel to onMessage until
	// ctx ends. onReset is called whenever messages may have been lost
	// (e.g. after a reconnect), so subscribers can drop what they cached.
	// It returns once the subscription is active.
	Subscribe(ctx context.Context, channel string, onMessage func(msg string), onReset func()) error

	// Ping checks that the backend is reachable.
	Ping(ctx context.Context) error

	// GarbageCollect removes keys and index members that expired before now
	// where the backend does not expire them itself. It returns how many
	// were removed.
	GarbageCollect(ctx context.Context, now time.Time) (int, error)

	// Name is "bolt" or "redis", for logs, health and test output.
	Name() string

	// Close releases the backend's resources.
	Close() error
}

// Reader is the read half of a transaction.
type Reader interface {
	// Get returns the value of key, or ErrNotFound.
	Get(key string) ([]byte, error)
	// IndexRange returns up to limit members of the index set, in
	// ascending byte order, strictly after `after` ("" = from the start).
	// limit <= 0 means no limit.
	IndexRange(index, after string, limit int) ([]string, error)
	// IndexHas reports whether member is in the index set.
	IndexHas(index, member string) (bool, error)
}

// Txn is a read-write transaction. Reads see the transaction's own writes.
type Txn interface {
	Reader
	// Put sets key to value. ttl > 0 makes the key expire after ttl;
	// ttl == 0 keeps it until deleted.
	Put(key string, value []byte, ttl time.Duration) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(key string) error
	// IndexAdd adds member to the index set (idempotent).
	IndexAdd(index, member string) error
	// IndexRemove removes member from the index set (idempotent).
	IndexRemove(index, member string) error
}

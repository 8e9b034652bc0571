// Package bolt owns ssogate's embedded default storage: a store.Backend on a
// single bbolt file. It keeps the bytes-level key/value space (with expiring
// keys), the ordered index sets and an in-process pub/sub channel; every
// directory rule lives above it in package store.
//
// A bbolt file is locked exclusively by the process that opens it, so this
// backend serves exactly one ssogate instance. Deployments that run several
// instances must use the redis backend instead.
//
// File layout (all buckets at the top level):
//
//	kv:  key                       -> [8-byte big-endian expiry, unix nanos; 0 = never][value]
//	idx: index + "\x00" + member   -> empty
//	exp: [8-byte expiry] + key     -> empty   (only for keys with a TTL; drives GarbageCollect)
package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssogate/ssogate/store"
)

var _ store.Backend = (*Backend)(nil)

var (
	bucketKV  = []byte("kv")
	bucketIdx = []byte("idx")
	bucketExp = []byte("exp")
)

// DefaultTimeout is how long Open waits for the file lock when
// Options.Timeout is zero. bbolt itself would wait forever, which turns a
// second instance on the same file into a silent hang.
const DefaultTimeout = time.Second

// gcBatch bounds how many expired keys one GarbageCollect write transaction
// deletes, so a large backlog never holds the single bbolt writer lock for long.
const gcBatch = 1000

// Options configures Open.
type Options struct {
	// Timeout is how long to wait for the file lock; 0 means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock used to stamp and check expiry; nil means time.Now.
	Now func() time.Time
}

// Backend is a store.Backend on one bbolt file.
type Backend struct {
	db     *bbolt.DB
	path   string
	now    func() time.Time
	closed atomic.Bool

	mu   sync.Mutex // guards subs and nextSubID
	subs map[string][]subscriber
	// nextSubID identifies subscriptions so each can remove only itself.
	nextSubID uint64
}

// Open opens (creating if needed) the bbolt file at path. The parent
// directory is created 0700 and the file 0600 because it holds sessions and
// identity data.
func Open(path string, opts Options) (*Backend, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: creating directory for %s: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.Timeout})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("bolt: %s is in use by another process (waited %s for its lock); "+
				"a bolt file serves a single ssogate instance, so run several instances on the redis backend: %w",
				path, opts.Timeout, err)
		}
		return nil, fmt.Errorf("bolt: opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketKV, bucketIdx, bucketExp} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bolt: creating bucket %q: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: initialising %s: %w", path, err)
	}
	return &Backend{db: db, path: path, now: opts.Now, subs: map[string][]subscriber{}}, nil
}

// Name implements store.Backend.
func (b *Backend) Name() string { return "bolt" }

// Close closes the file. bbolt waits for running transactions to finish.
// Closing twice is not an error.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("bolt: closing %s: %w", b.path, err)
	}
	return nil
}

// Ping implements store.Backend: the file is reachable exactly while it is open.
func (b *Backend) Ping(ctx context.Context) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	// A real read transaction also catches a DB closed concurrently.
	if err := b.db.View(func(*bbolt.Tx) error { return nil }); err != nil {
		return b.unavailable("ping", err)
	}
	return nil
}

// Get implements store.Backend.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := b.View(ctx, func(r store.Reader) error {
		var err error
		out, err = r.Get(key)
		return err
	})
	return out, err
}

// Update implements store.Backend. bbolt has a single writer, so fn runs
// exactly once and never conflicts; reads inside see the transaction's own
// writes natively.
func (b *Backend) Update(ctx context.Context, fn func(tx store.Txn) error) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	btx, err := b.db.Begin(true)
	if err != nil {
		return b.unavailable("begin write transaction", err)
	}
	// Rolls back on fn error or panic; after a successful Commit it is a no-op.
	defer func() { _ = btx.Rollback() }()
	if err := fn(newTxn(btx, b.now())); err != nil {
		return err // unchanged, so errors.Is works for the caller's sentinels
	}
	if err := btx.Commit(); err != nil {
		return b.unavailable("commit", err)
	}
	return nil
}

// View implements store.Backend with a bbolt read transaction, which is a
// consistent snapshot.
func (b *Backend) View(ctx context.Context, fn func(tx store.Reader) error) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	btx, err := b.db.Begin(false)
	if err != nil {
		return b.unavailable("begin read transaction", err)
	}
	defer func() { _ = btx.Rollback() }()
	return fn(newTxn(btx, b.now()))
}

// GarbageCollect implements store.Backend: it deletes kv keys whose expiry is
// at or before now, walking the exp bucket in expiry order. Index members
// never expire in this backend, so only keys are counted.
func (b *Backend) GarbageCollect(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		if err := b.check(ctx); err != nil {
			return total, err
		}
		n, more := 0, false
		err := b.db.Update(func(btx *bbolt.Tx) error {
			var err error
			n, more, err = gcBatchTx(btx, now)
			return err
		})
		if err != nil {
			return total, b.unavailable("garbage collect", err)
		}
		total += n
		if !more {
			return total, nil
		}
	}
}

// check refuses work on a closed backend or a finished context.
func (b *Backend) check(ctx context.Context) error {
	if b.closed.Load() {
		return fmt.Errorf("bolt: %s is closed: %w", b.path, store.ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %w", err)
	}
	return nil
}

// unavailable wraps a bbolt failure so callers can fail closed on
// store.ErrUnavailable while keeping the cause.
func (b *Backend) unavailable(op string, err error) error {
	return fmt.Errorf("bolt: %s on %s: %w: %w", op, b.path, store.ErrUnavailable, err)
}

// Package redis is the Redis implementation of store.Backend, for running
// several ssogate instances against one shared directory.
//
// # Keys
//
// Every key carries the configured prefix as a Redis Cluster hash tag:
// prefix "ssogate:" stores key "session/abc" as "{ssogate}:session/abc" and
// index set "idx/usersess/u1" as "{ssogate}#idx/usersess/u1". Redis Cluster
// hashes only the part between the braces, so all of a directory's keys
// live in one slot. That is what lets one WATCH/MULTI/EXEC transaction read
// and write any mix of keys in Cluster mode as it does on a single server;
// without the tag, transactions touching two keys would fail with CROSSSLOT.
// The price is that one directory does not spread over the cluster's
// shards, which is fine for ssogate's small, hot data set. Values live
// after "}:", index sets after "}#", so the two can never collide.
//
// # Expiry
//
// Keys with a TTL are written with SET … PX/EX and Redis expires them
// itself, so GarbageCollect has nothing to do. Index members that point at
// expired keys are cleaned up by the directory layer.
//
// # Errors
//
// A missing key is store.ErrNotFound. Any failure to talk to Redis
// (network, timeouts, a server that is loading, read-only or refusing
// auth) wraps store.ErrUnavailable together with the go-redis error, so
// both errors.Is(err, store.ErrUnavailable) and checks against go-redis
// errors work. Error texts never contain keys (they hold session IDs) or
// credentials.
package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ssogate/ssogate/store"
)

// DefaultKeyPrefix is used when Options.KeyPrefix is empty.
const DefaultKeyPrefix = "ssogate:"

// Options tunes a Backend.
type Options struct {
	// KeyPrefix namespaces every key and channel, so several directories
	// can share one Redis. A trailing ":" is optional; the rest becomes
	// the Cluster hash tag and must not contain "{" or "}". Default
	// "ssogate:".
	KeyPrefix string
}

// Backend is a store.Backend on Redis (standalone, Sentinel or Cluster).
type Backend struct {
	client    goredis.UniversalClient
	keyPfx    string   // "{tag}:" for values
	indexPfx  string   // "{tag}#" for index sets
	chanPfx   string   // "{tag}:" for pub/sub channels
	watchKeys []string // keys Watch needs to pick a node (Cluster only)

	mu     sync.Mutex
	subs   map[*goredis.PubSub]struct{}
	closed bool
}

var _ store.Backend = (*Backend)(nil)

// Open connects to the Redis named by rawURL:
//
//	redis://[user:pass@]host:port[/db]
//	rediss://[user:pass@]host:port[/db]                       (TLS)
//	redis+sentinel://[user:pass@]h1:p1,h2:p2/master-name[/db]  (also rediss+sentinel)
//	redis+cluster://[user:pass@]h1:p1,h2:p2                    (also rediss+cluster)
//
// Query parameters are go-redis options (dial_timeout, pool_size, …).
// Open does not contact the server; use Ping to check it.
func Open(rawURL string, opts Options) (*Backend, error) {
	tag, err := hashTag(opts.KeyPrefix)
	if err != nil {
		return nil, err
	}
	client, cluster, err := newClient(rawURL)
	if err != nil {
		return nil, err
	}
	b := &Backend{
		client:   client,
		keyPfx:   "{" + tag + "}:",
		indexPfx: "{" + tag + "}#",
		chanPfx:  "{" + tag + "}:",
		subs:     make(map[*goredis.PubSub]struct{}),
	}
	if cluster {
		// ClusterClient.Watch routes by its keys. This one is never written;
		// it only shares the hash tag, hence the slot, with every other key.
		b.watchKeys = []string{"{" + tag + "}!txn"}
	}
	return b, nil
}

func hashTag(prefix string) (string, error) {
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	tag := strings.TrimSuffix(prefix, ":")
	switch {
	case tag == "":
		return "", errors.New("redis: key prefix must contain more than a colon")
	case strings.ContainsAny(tag, "{}"):
		return "", errors.New("redis: key prefix must not contain '{' or '}' (it becomes the Cluster hash tag)")
	}
	return tag, nil
}

func (b *Backend) key(k string) string   { return b.keyPfx + k }
func (b *Backend) index(i string) string { return b.indexPfx + i }

// Get reads one key with a single GET.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := b.client.Get(ctx, b.key(key)).Bytes()
	if err != nil {
		return nil, wrapErr("get", err)
	}
	return v, nil
}

// Ping checks that Redis answers.
func (b *Backend) Ping(ctx context.Context) error {
	return wrapErr("ping", b.client.Ping(ctx).Err())
}

// GarbageCollect returns 0: Redis expires keys itself.
func (b *Backend) GarbageCollect(context.Context, time.Time) (int, error) {
	return 0, nil
}

// Name is "redis".
func (b *Backend) Name() string { return "redis" }

// Close ends all subscriptions and closes the client.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := b.subs
	b.subs = nil
	b.mu.Unlock()
	for ps := range subs {
		_ = ps.Close()
	}
	if err := b.client.Close(); err != nil {
		return fmt.Errorf("redis: close: %w", err)
	}
	return nil
}

// wrapErr maps go-redis errors onto the store's sentinels. op names the
// operation; keys are deliberately left out (they can hold session IDs).
func wrapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case err == goredis.Nil || errors.Is(err, goredis.Nil):
		return store.ErrNotFound
	case errors.Is(err, context.Canceled):
		// The caller gave up; Redis is not at fault.
		return fmt.Errorf("redis: %s: %w", op, err)
	default:
		return fmt.Errorf("redis: %s: %w: %w", op, store.ErrUnavailable, err)
	}
}

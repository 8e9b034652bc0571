package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/bolt"
	"github.com/ssogate/ssogate/store/redis"
)

// backends keeps storage open across config reloads: Caddy provisions the
// new config before cleaning up the old one, and bolt's file lock would
// otherwise make the new config wait for the old.
var backends = caddy.NewUsagePool()

type pooledBackend struct{ store.Backend }

func (p pooledBackend) Destruct() error { return p.Close() }

func openBackend(cfg *StorageConfig) (store.Backend, string, error) {
	var key string
	switch cfg.Backend {
	case "bolt":
		key = "bolt:" + cfg.Path
	case "redis":
		key = "redis:" + cfg.KeyPrefix + "|" + cfg.URL
	}
	v, _, err := backends.LoadOrNew(key, func() (caddy.Destructor, error) {
		switch cfg.Backend {
		case "bolt":
			b, err := bolt.Open(cfg.Path, bolt.Options{Timeout: 2 * time.Second})
			if err != nil {
				return nil, fmt.Errorf("ssogate: opening bolt storage: %w", err)
			}
			return pooledBackend{b}, nil
		default:
			b, err := redis.Open(cfg.URL, redis.Options{KeyPrefix: cfg.KeyPrefix})
			if err != nil {
				return nil, fmt.Errorf("ssogate: opening redis storage: %w", err)
			}
			return pooledBackend{b}, nil
		}
	})
	if err != nil {
		return nil, "", err
	}
	return v.(pooledBackend).Backend, key, nil
}

// instrumentedBackend times store operations and counts their failures
// for the metrics.
type instrumentedBackend struct {
	store.Backend
	m *metrics
}

func (b instrumentedBackend) observe(op string, start time.Time, err error) {
	b.m.storeOps.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrAlreadyExists) {
		b.m.storeErrors.Inc()
	}
}

func (b instrumentedBackend) Get(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	v, err := b.Backend.Get(ctx, key)
	b.observe("get", start, err)
	return v, err
}

func (b instrumentedBackend) Update(ctx context.Context, fn func(tx store.Txn) error) error {
	start := time.Now()
	err := b.Backend.Update(ctx, fn)
	b.observe("update", start, err)
	return err
}

func (b instrumentedBackend) View(ctx context.Context, fn func(tx store.Reader) error) error {
	start := time.Now()
	err := b.Backend.View(ctx, fn)
	b.observe("view", start, err)
	return err
}

func (b instrumentedBackend) Ping(ctx context.Context) error {
	start := time.Now()
	err := b.Backend.Ping(ctx)
	b.observe("ping", start, err)
	return err
}

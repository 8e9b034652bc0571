package caddymodule

import (
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

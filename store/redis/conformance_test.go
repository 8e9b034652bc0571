package redis_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ssogate/ssogate/internal/redistest"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/redis"
	"github.com/ssogate/ssogate/store/storetest"
)

// TestConformance runs the shared store suite on one real redis-server;
// each backend the factory makes gets its own key prefix, so it starts
// empty.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	storetest.RunTests(t, "redis", func(t *testing.T) store.Backend {
		b, err := redis.Open(srv.URL(), redis.Options{KeyPrefix: fmt.Sprintf("t%d:", n.Add(1))})
		if err != nil {
			t.Fatalf("redis.Open: %v", err)
		}
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("redis Close: %v", err)
			}
		})
		return b
	})
}

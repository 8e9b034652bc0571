package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/bolt"
	"github.com/ssogate/ssogate/store/storetest"
)

// TestConformance runs the shared store suite on a fresh bolt file per test.
func TestConformance(t *testing.T) {
	storetest.RunTests(t, "bolt", func(t *testing.T) store.Backend {
		b, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{})
		if err != nil {
			t.Fatalf("bolt.Open: %v", err)
		}
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("bolt Close: %v", err)
			}
		})
		return b
	})
}

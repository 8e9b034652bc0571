package store

import (
	"context"
	"errors"
)

const kSetting = "setting/" // + name: gateway-wide values such as signing keys

// GetSetting reads a gateway-wide setting blob.
func (s *Store) GetSetting(ctx context.Context, name string) ([]byte, error) {
	return s.b.Get(ctx, kSetting+name)
}

// UpdateSetting atomically replaces a setting with what fn returns for
// the current value (nil, false when unset). Every instance sees one winner.
func (s *Store) UpdateSetting(ctx context.Context, name string, fn func(old []byte, exists bool) ([]byte, error)) ([]byte, error) {
	var out []byte
	err := s.b.Update(ctx, func(tx Txn) error {
		old, err := tx.Get(kSetting + name)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		next, err := fn(old, exists)
		if err != nil {
			return err
		}
		out = next
		if exists && string(next) == string(old) {
			return nil
		}
		return tx.Put(kSetting+name, next, 0)
	})
	return out, err
}

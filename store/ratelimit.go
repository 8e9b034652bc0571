package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// kRateLimit keys fixed-window counters: + window + "/" + window start
// (Unix ns) + "/" + the caller's key. The numbers come first so no key can
// be confused with another window's.
const kRateLimit = "rl/"

// Hit counts one event against key in the current fixed window of the given
// length and reports the count so far (this one included), the time until
// the window resets, and whether the count is within limit. Once a window
// is over its limit further hits are refused without being written, so a
// flood costs no writes.
func (s *Store) Hit(ctx context.Context, key string, window time.Duration, limit int) (count int, retryAfter time.Duration, allowed bool, err error) {
	if window <= 0 || limit < 0 {
		return 0, 0, false, fmt.Errorf("store: rate limit %q: bad window %v or limit %d", key, window, limit)
	}
	now := s.Now()
	start := now.Truncate(window)
	retryAfter = start.Add(window).Sub(now)
	k := kRateLimit + strconv.FormatInt(int64(window), 10) + "/" + strconv.FormatInt(start.UnixNano(), 10) + "/" + key
	err = s.b.Update(ctx, func(tx Txn) error {
		count = 0
		raw, err := tx.Get(k)
		switch {
		case err == nil:
			if count, err = strconv.Atoi(string(raw)); err != nil {
				return fmt.Errorf("corrupt counter: %w", err)
			}
		case !errors.Is(err, ErrNotFound):
			return err
		}
		count++
		if count > limit {
			return nil
		}
		return tx.Put(k, []byte(strconv.Itoa(count)), window)
	})
	if err != nil {
		return 0, 0, false, fmt.Errorf("store: rate limit %q: %w", key, err)
	}
	return count, retryAfter, count <= limit, nil
}

// Peek reads key's count in the current window without counting: one Get,
// for checks on the hot path (e.g. "has this address failed too often?").
func (s *Store) Peek(ctx context.Context, key string, window time.Duration) (count int, retryAfter time.Duration, err error) {
	if window <= 0 {
		return 0, 0, fmt.Errorf("store: rate limit %q: bad window %v", key, window)
	}
	now := s.Now()
	start := now.Truncate(window)
	retryAfter = start.Add(window).Sub(now)
	raw, err := s.b.Get(ctx, kRateLimit+strconv.FormatInt(int64(window), 10)+"/"+strconv.FormatInt(start.UnixNano(), 10)+"/"+key)
	if errors.Is(err, ErrNotFound) {
		return 0, retryAfter, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: rate limit %q: %w", key, err)
	}
	if count, err = strconv.Atoi(string(raw)); err != nil {
		return 0, 0, fmt.Errorf("store: rate limit %q: corrupt counter: %w", key, err)
	}
	return count, retryAfter, nil
}

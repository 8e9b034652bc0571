package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ssogate/ssogate/store"
)

// maxAttempts bounds how often Update re-runs fn after losing a WATCH race.
const maxAttempts = 100

// Update runs fn as an optimistic WATCH/MULTI/EXEC transaction. Every key
// or index fn reads is WATCHed before it is read; writes are buffered and
// sent in one MULTI/EXEC. If another client changed anything fn read, EXEC
// aborts and fn runs again on a fresh transaction (up to maxAttempts, with
// a short jittered backoff), after which Update returns store.ErrConflict.
func (b *Backend) Update(ctx context.Context, fn func(tx store.Txn) error) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return wrapErr("update", err)
			}
		}
		var fnErr error
		err := b.client.Watch(ctx, func(tx *goredis.Tx) error {
			t := &txn{ctx: ctx, b: b, cmd: tx, tx: tx}
			if fnErr = fn(t); fnErr != nil {
				// fn may have decided on reads that a concurrent commit has
				// since made stale: EXEC an empty transaction to find out
				// (it fails if a WATCHed key changed), and retry then.
				if _, err := tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
					p.Ping(ctx)
					return nil
				}); err != nil {
					return err
				}
				return nil
			}
			return t.commit()
		}, b.watchKeys...)
		switch {
		case errors.Is(err, goredis.TxFailedErr):
			continue
		case fnErr != nil:
			return fnErr
		case err == nil:
			return nil
		default:
			return wrapErr("update", err)
		}
	}
	return fmt.Errorf("redis: update: gave up after %d attempts: %w", maxAttempts, store.ErrConflict)
}

// View runs fn with plain reads. Redis offers no snapshot across several
// commands, so each read sees the latest committed state.
func (b *Backend) View(ctx context.Context, fn func(tx store.Reader) error) error {
	return fn(reader{&txn{ctx: ctx, b: b, cmd: b.client}})
}

// backoff sleeps a random 0–(1ms·2^attempt) capped at 20ms, or until ctx ends.
func backoff(ctx context.Context, attempt int) error {
	ceiling := min(time.Millisecond<<min(attempt, 5), 20*time.Millisecond)
	t := time.NewTimer(rand.N(ceiling) + 50*time.Microsecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type opKind uint8

const (
	opPut opKind = iota
	opDelete
	opIndexAdd
	opIndexRemove
)

type op struct {
	kind opKind
	key  string // Redis key (prefixed)
	val  []byte
	ttl  time.Duration
	memb string
}

// txn is both the Update transaction (tx != nil) and, through reader, the
// View reader (tx == nil, no buffered writes).
type txn struct {
	ctx context.Context
	b   *Backend
	cmd goredis.Cmdable
	tx  *goredis.Tx

	watched map[string]struct{}
	ops     []op
	writes  map[string]int             // store key -> index in ops of its last Put/Delete
	members map[string]map[string]bool // index -> member -> added (true) / removed (false)
}

var _ store.Txn = (*txn)(nil)

// reader hides the write methods from View callers.
type reader struct{ t *txn }

func (r reader) Get(key string) ([]byte, error) { return r.t.Get(key) }
func (r reader) IndexRange(index, after string, limit int) ([]string, error) {
	return r.t.IndexRange(index, after, limit)
}
func (r reader) IndexHas(index, member string) (bool, error) { return r.t.IndexHas(index, member) }

// watch WATCHes a Redis key once per transaction; a no-op in View.
func (t *txn) watch(rk string) error {
	if t.tx == nil {
		return nil
	}
	if _, ok := t.watched[rk]; ok {
		return nil
	}
	if err := t.tx.Watch(t.ctx, rk).Err(); err != nil {
		return wrapErr("watch", err)
	}
	if t.watched == nil {
		t.watched = make(map[string]struct{})
	}
	t.watched[rk] = struct{}{}
	return nil
}

func (t *txn) Get(key string) ([]byte, error) {
	if i, ok := t.writes[key]; ok {
		w := &t.ops[i]
		if w.kind == opDelete {
			return nil, store.ErrNotFound
		}
		return bytes.Clone(w.val), nil
	}
	rk := t.b.key(key)
	if err := t.watch(rk); err != nil {
		return nil, err
	}
	v, err := t.cmd.Get(t.ctx, rk).Bytes()
	if err != nil {
		return nil, wrapErr("get", err)
	}
	return v, nil
}

func (t *txn) IndexRange(index, after string, limit int) ([]string, error) {
	rk := t.b.index(index)
	if err := t.watch(rk); err != nil {
		return nil, err
	}
	pending := t.members[index]
	fetch := limit
	if limit > 0 {
		// Buffered removals may drop fetched members; fetch enough extra
		// that `limit` survive whenever Redis has them.
		for m, added := range pending {
			if !added && m > after {
				fetch++
			}
		}
	}
	args := goredis.ZRangeArgs{Key: rk, Start: "-", Stop: "+", ByLex: true}
	if after != "" {
		args.Start = "(" + after
	}
	if fetch > 0 {
		args.Count = int64(fetch)
	}
	got, err := t.cmd.ZRangeArgs(t.ctx, args).Result()
	if err != nil {
		return nil, wrapErr("index range", err)
	}
	if len(pending) == 0 {
		return got, nil
	}
	out := make([]string, 0, len(got)+len(pending))
	for _, m := range got {
		if added, ok := pending[m]; !ok || added {
			out = append(out, m)
		}
	}
	for m, added := range pending {
		if added && (after == "" || m > after) && !inSorted(got, m) {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func inSorted(s []string, v string) bool {
	_, found := slices.BinarySearch(s, v)
	return found
}

func (t *txn) IndexHas(index, member string) (bool, error) {
	if added, ok := t.members[index][member]; ok {
		return added, nil
	}
	rk := t.b.index(index)
	if err := t.watch(rk); err != nil {
		return false, err
	}
	err := t.cmd.ZScore(t.ctx, rk, member).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, goredis.Nil):
		return false, nil
	default:
		return false, wrapErr("index has", err)
	}
}

func (t *txn) Put(key string, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("redis: put: negative ttl %v", ttl)
	}
	t.write(key, op{kind: opPut, key: t.b.key(key), val: bytes.Clone(value), ttl: ttl})
	return nil
}

func (t *txn) Delete(key string) error {
	t.write(key, op{kind: opDelete, key: t.b.key(key)})
	return nil
}

func (t *txn) write(key string, o op) {
	if t.writes == nil {
		t.writes = make(map[string]int)
	}
	t.writes[key] = len(t.ops)
	t.ops = append(t.ops, o)
}

func (t *txn) IndexAdd(index, member string) error {
	t.member(index, member, true)
	return nil
}

func (t *txn) IndexRemove(index, member string) error {
	t.member(index, member, false)
	return nil
}

func (t *txn) member(index, member string, add bool) {
	kind := opIndexRemove
	if add {
		kind = opIndexAdd
	}
	t.ops = append(t.ops, op{kind: kind, key: t.b.index(index), memb: member})
	if t.members == nil {
		t.members = make(map[string]map[string]bool)
	}
	if t.members[index] == nil {
		t.members[index] = make(map[string]bool)
	}
	t.members[index][member] = add
}

// commit sends the buffered writes in one MULTI/EXEC. A transaction that
// only read still EXECs (a PING) so a concurrent change to what it read
// fails it, keeping read-only Updates serialisable.
func (t *txn) commit() error {
	if len(t.ops) == 0 && len(t.watched) == 0 {
		return nil
	}
	_, err := t.tx.TxPipelined(t.ctx, func(p goredis.Pipeliner) error {
		if len(t.ops) == 0 {
			p.Ping(t.ctx)
		}
		for i := range t.ops {
			o := &t.ops[i]
			switch o.kind {
			case opPut:
				p.Set(t.ctx, o.key, o.val, o.ttl)
			case opDelete:
				p.Del(t.ctx, o.key)
			case opIndexAdd:
				p.ZAdd(t.ctx, o.key, goredis.Z{Member: o.memb})
			case opIndexRemove:
				p.ZRem(t.ctx, o.key, o.memb)
			}
		}
		return nil
	})
	return err
}

package storetest

import (
	"bytes"
	"context"
	"sort"
	"sync"
	"time"

	"github.com/ssogate/ssogate/store"
)

// MemBackend is an in-memory store.Backend for scale benchmarks only: it
// runs the public Store methods with no fsync and no round trips, so a
// benchmark can create 100k real records quickly, and it records every
// committed write in order for replay onto a real backend (Replay).
// Transactions are serialised by one mutex; TTLs are recorded but not
// enforced; Publish reaches this backend's own subscribers. It is not a
// model of either real backend and no conformance test runs on it: the
// gateway and its tests use bolt and Redis.
type MemBackend struct {
	mu   sync.Mutex
	kv   map[string][]byte
	idx  map[string]map[string]struct{}
	log  []memOp
	subs map[string][]func(string)
}

type memOpKind uint8

const (
	memPut memOpKind = iota
	memDelete
	memIndexAdd
	memIndexRemove
)

type memOp struct {
	kind   memOpKind
	key    string // the key, or the index name
	member string
	val    []byte
	ttl    time.Duration
}

var _ store.Backend = (*MemBackend)(nil)

// NewMemBackend returns an empty MemBackend.
func NewMemBackend() *MemBackend {
	return &MemBackend{kv: map[string][]byte{}, idx: map[string]map[string]struct{}{}, subs: map[string][]func(string){}}
}

// Writes is how many writes were committed.
func (b *MemBackend) Writes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.log)
}

// Replay applies every committed write, in order, to dst in transactions
// of at most chunk writes.
func (b *MemBackend) Replay(ctx context.Context, dst store.Backend, chunk int) error {
	b.mu.Lock()
	ops := b.log
	b.mu.Unlock()
	for len(ops) > 0 {
		batch := ops[:min(chunk, len(ops))]
		ops = ops[len(batch):]
		err := dst.Update(ctx, func(tx store.Txn) error {
			for _, o := range batch {
				var err error
				switch o.kind {
				case memPut:
					err = tx.Put(o.key, o.val, o.ttl)
				case memDelete:
					err = tx.Delete(o.key)
				case memIndexAdd:
					err = tx.IndexAdd(o.key, o.member)
				case memIndexRemove:
					err = tx.IndexRemove(o.key, o.member)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *MemBackend) Get(_ context.Context, key string) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return (&memTxn{b: b}).Get(key)
}

func (b *MemBackend) Update(_ context.Context, fn func(tx store.Txn) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &memTxn{b: b}
	if err := fn(t); err != nil {
		return err
	}
	for _, o := range t.ops {
		switch o.kind {
		case memPut:
			b.kv[o.key] = o.val
		case memDelete:
			delete(b.kv, o.key)
		case memIndexAdd:
			if b.idx[o.key] == nil {
				b.idx[o.key] = map[string]struct{}{}
			}
			b.idx[o.key][o.member] = struct{}{}
		case memIndexRemove:
			delete(b.idx[o.key], o.member)
		}
	}
	b.log = append(b.log, t.ops...)
	return nil
}

func (b *MemBackend) View(_ context.Context, fn func(tx store.Reader) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fn(&memTxn{b: b})
}

func (b *MemBackend) Publish(_ context.Context, channel, msg string) error {
	b.mu.Lock()
	subs := b.subs[channel]
	b.mu.Unlock()
	for _, fn := range subs {
		fn(msg)
	}
	return nil
}

func (b *MemBackend) Subscribe(_ context.Context, channel string, onMessage func(string), _ func()) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[channel] = append(b.subs[channel], onMessage)
	return nil
}

func (b *MemBackend) Ping(context.Context) error                             { return nil }
func (b *MemBackend) GarbageCollect(context.Context, time.Time) (int, error) { return 0, nil }
func (b *MemBackend) Name() string                                           { return "memory" }
func (b *MemBackend) Close() error                                           { return nil }

// memTxn buffers writes until Update commits them; reads see them.
type memTxn struct {
	b   *MemBackend
	ops []memOp
}

func (t *memTxn) Get(key string) ([]byte, error) {
	for i := len(t.ops) - 1; i >= 0; i-- {
		if o := &t.ops[i]; o.key == key {
			switch o.kind {
			case memPut:
				return bytes.Clone(o.val), nil
			case memDelete:
				return nil, store.ErrNotFound
			}
		}
	}
	v, ok := t.b.kv[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (t *memTxn) IndexHas(index, member string) (bool, error) {
	for i := len(t.ops) - 1; i >= 0; i-- {
		if o := &t.ops[i]; o.key == index && o.member == member {
			switch o.kind {
			case memIndexAdd:
				return true, nil
			case memIndexRemove:
				return false, nil
			}
		}
	}
	_, ok := t.b.idx[index][member]
	return ok, nil
}

func (t *memTxn) IndexRange(index, after string, limit int) ([]string, error) {
	set := map[string]bool{}
	for m := range t.b.idx[index] {
		set[m] = true
	}
	for _, o := range t.ops {
		if o.key == index && (o.kind == memIndexAdd || o.kind == memIndexRemove) {
			set[o.member] = o.kind == memIndexAdd
		}
	}
	var out []string
	for m, in := range set {
		if in && m > after {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (t *memTxn) Put(key string, value []byte, ttl time.Duration) error {
	t.ops = append(t.ops, memOp{kind: memPut, key: key, val: bytes.Clone(value), ttl: ttl})
	return nil
}

func (t *memTxn) Delete(key string) error {
	t.ops = append(t.ops, memOp{kind: memDelete, key: key})
	return nil
}

func (t *memTxn) IndexAdd(index, member string) error {
	t.ops = append(t.ops, memOp{kind: memIndexAdd, key: index, member: member})
	return nil
}

func (t *memTxn) IndexRemove(index, member string) error {
	t.ops = append(t.ops, memOp{kind: memIndexRemove, key: index, member: member})
	return nil
}

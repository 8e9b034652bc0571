package session

// Scale of the session cache: what a cached validation costs with 1k and
// with 100k sessions cached (compare the two results; the ratio is what
// matters), and how much memory a cached session takes.
//
// The sessions are real: users, memberships and sessions are created with
// the public Store methods and Manager.Issue, and the cache is filled by
// Manager.Validate (the real load and put). Only the store under them is
// scaleMemBackend, an in-memory backend, because creating 100k sessions on
// bolt is 100k fsync'd transactions. The measured path, a cached Validate,
// never reaches the store.

import (
	"bytes"
	"context"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

// newScaleFixture returns a started Manager on an in-memory store holding n
// users, each an active member of one org with one issued session, and the
// n cookie values.
func newScaleFixture(tb testing.TB, n int, cfg Config) (*Manager, []string) {
	tb.Helper()
	ctx := context.Background()
	st := store.New(newScaleMemBackend())
	kr, err := NewKeyRing(ctx, st, 0)
	if err != nil {
		tb.Fatal(err)
	}
	m := NewManager(st, []byte("0123456789abcdef0123456789abcdef"), kr, cfg, nil)
	mctx, cancel := context.WithCancel(ctx)
	tb.Cleanup(cancel)
	if err := m.Start(mctx); err != nil {
		tb.Fatal(err)
	}
	p := &store.ParentOrg{Name: "Acme"}
	if err := st.CreateParentOrg(ctx, p); err != nil {
		tb.Fatal(err)
	}
	o := &store.Org{Slug: "acme", Name: "Acme", ParentID: p.ID}
	if err := st.CreateOrg(ctx, o); err != nil {
		tb.Fatal(err)
	}
	cookies := make([]string, n)
	for i := range n {
		u := &store.User{Email: fmt.Sprintf("user%d@acme.com", i), Name: fmt.Sprintf("User %d", i),
			IdPGroups: []string{"ssogate-acme-member", "engineering"}}
		if err := st.CreateUser(ctx, u); err != nil {
			tb.Fatal(err)
		}
		ms := &store.Membership{OrgID: o.ID, UserID: u.ID, Role: store.RoleMember, Status: store.MemberActive}
		if err := st.PutMembership(ctx, ms); err != nil {
			tb.Fatal(err)
		}
		c, _, err := m.Issue(ctx, u, IssueMeta{Method: "oidc", ParentID: p.ID, RemoteIP: "203.0.113.7",
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"})
		if err != nil {
			tb.Fatal(err)
		}
		cookies[i] = c
	}
	return m, cookies
}

// fillCache validates every cookie once (each a cache miss that loads and
// caches the session) and stores the entries in entries, if not nil.
func fillCache(tb testing.TB, m *Manager, cookies []string, entries []*Entry) {
	tb.Helper()
	ctx := context.Background()
	for i, c := range cookies {
		e, err := m.Validate(ctx, c)
		if err != nil {
			tb.Fatal(err)
		}
		if entries != nil {
			entries[i] = e
		}
	}
	if got := m.CacheSize(); got != int64(len(cookies)) {
		tb.Fatalf("cache holds %d sessions, want %d", got, len(cookies))
	}
}

// BenchmarkValidateCachedScale is BenchmarkValidateCached with n sessions
// in the cache, validated in a fixed random order (many users at once, not
// one hot cookie).
func BenchmarkValidateCachedScale(b *testing.B) {
	for _, sc := range []struct {
		name string
		n    int
	}{{"1k", 1_000}, {"100k", 100_000}} {
		b.Run(sc.name, func(b *testing.B) {
			m, cookies := newScaleFixture(b, sc.n, Config{Recheck: time.Hour})
			entries := make([]*Entry, sc.n)
			fillCache(b, m, cookies, entries)
			order := mrand.New(mrand.NewPCG(1, uint64(sc.n))).Perm(sc.n)
			ctx := context.Background()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				k := order[i%sc.n]
				i++
				if got, err := m.Validate(ctx, cookies[k]); err != nil || got != entries[k] {
					b.Fatal("cache miss", err)
				}
			}
		})
	}
}

// TestCachedSessionMemory measures the heap a cached session takes: the
// entry and the cache's indexes, then also the identity JWT the guard signs
// and keeps on the entry. Cookie values are allocated before the first
// measurement (they are the client's, not the cache's).
func TestCachedSessionMemory(t *testing.T) {
	const n = 20_000
	const bound = 4 << 10 // a sanity bound, bytes per session
	m, cookies := newScaleFixture(t, n, Config{Recheck: time.Hour})
	entries := make([]*Entry, n)
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	before := heap()
	fillCache(t, m, cookies, entries)
	cached := heap()
	for _, e := range entries {
		if _, err := m.JWTHeader(e, "https://app.example.com"); err != nil {
			t.Fatal(err)
		}
	}
	withJWT := heap()
	runtime.KeepAlive(cookies)
	runtime.KeepAlive(entries)
	runtime.KeepAlive(m)

	perEntry := float64(cached-before) / n
	perSession := float64(withJWT-before) / n
	t.Logf("cached session: %.0f bytes (entry and indexes), %.0f bytes with its signed JWT (%d sessions)",
		perEntry, perSession, n)
	if perEntry <= 0 || perSession < perEntry {
		t.Fatalf("implausible measurement: %.0f bytes per entry, %.0f with JWT", perEntry, perSession)
	}
	if perSession >= bound {
		t.Errorf("a cached session takes %.0f bytes, want < %d", perSession, bound)
	}
}

// scaleMemBackend is an in-memory store.Backend that exists to create many
// real sessions quickly (no fsync, no round trips). Transactions are
// serialised by one mutex; TTLs are not enforced (tests end long before);
// Publish delivers to this backend's own subscribers. It is not a model
// of either real backend.
type scaleMemBackend struct {
	mu   sync.Mutex
	kv   map[string][]byte
	idx  map[string]map[string]struct{}
	subs map[string][]func(string)
}

var _ store.Backend = (*scaleMemBackend)(nil)

func newScaleMemBackend() *scaleMemBackend {
	return &scaleMemBackend{kv: map[string][]byte{}, idx: map[string]map[string]struct{}{},
		subs: map[string][]func(string){}}
}

func (b *scaleMemBackend) Get(_ context.Context, key string) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return (&scaleMemTxn{b: b}).Get(key)
}

func (b *scaleMemBackend) Update(_ context.Context, fn func(tx store.Txn) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &scaleMemTxn{b: b}
	if err := fn(t); err != nil {
		return err
	}
	for _, o := range t.ops {
		switch o.kind {
		case scalePut:
			b.kv[o.key] = o.val
		case scaleDelete:
			delete(b.kv, o.key)
		case scaleIndexAdd:
			if b.idx[o.key] == nil {
				b.idx[o.key] = map[string]struct{}{}
			}
			b.idx[o.key][o.member] = struct{}{}
		case scaleIndexRemove:
			delete(b.idx[o.key], o.member)
		}
	}
	return nil
}

func (b *scaleMemBackend) View(_ context.Context, fn func(tx store.Reader) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fn(&scaleMemTxn{b: b})
}

func (b *scaleMemBackend) Publish(_ context.Context, channel, msg string) error {
	b.mu.Lock()
	subs := b.subs[channel]
	b.mu.Unlock()
	for _, fn := range subs {
		fn(msg)
	}
	return nil
}

func (b *scaleMemBackend) Subscribe(_ context.Context, channel string, onMessage func(string), _ func()) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[channel] = append(b.subs[channel], onMessage)
	return nil
}

func (b *scaleMemBackend) Ping(context.Context) error                             { return nil }
func (b *scaleMemBackend) GarbageCollect(context.Context, time.Time) (int, error) { return 0, nil }
func (b *scaleMemBackend) Name() string                                           { return "memory" }
func (b *scaleMemBackend) Close() error                                           { return nil }

type scaleOpKind uint8

const (
	scalePut scaleOpKind = iota
	scaleDelete
	scaleIndexAdd
	scaleIndexRemove
)

type scaleOp struct {
	kind   scaleOpKind
	key    string // the key, or the index name
	member string
	val    []byte
}

// scaleMemTxn buffers writes until Update applies them; reads see them.
type scaleMemTxn struct {
	b   *scaleMemBackend
	ops []scaleOp
}

func (t *scaleMemTxn) Get(key string) ([]byte, error) {
	for i := len(t.ops) - 1; i >= 0; i-- {
		if o := &t.ops[i]; o.key == key {
			switch o.kind {
			case scalePut:
				return bytes.Clone(o.val), nil
			case scaleDelete:
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

func (t *scaleMemTxn) IndexHas(index, member string) (bool, error) {
	for i := len(t.ops) - 1; i >= 0; i-- {
		if o := &t.ops[i]; o.key == index && o.member == member {
			switch o.kind {
			case scaleIndexAdd:
				return true, nil
			case scaleIndexRemove:
				return false, nil
			}
		}
	}
	_, ok := t.b.idx[index][member]
	return ok, nil
}

func (t *scaleMemTxn) IndexRange(index, after string, limit int) ([]string, error) {
	set := map[string]bool{}
	for m := range t.b.idx[index] {
		set[m] = true
	}
	for _, o := range t.ops {
		if o.key == index && (o.kind == scaleIndexAdd || o.kind == scaleIndexRemove) {
			set[o.member] = o.kind == scaleIndexAdd
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

func (t *scaleMemTxn) Put(key string, value []byte, _ time.Duration) error {
	t.ops = append(t.ops, scaleOp{kind: scalePut, key: key, val: bytes.Clone(value)})
	return nil
}

func (t *scaleMemTxn) Delete(key string) error {
	t.ops = append(t.ops, scaleOp{kind: scaleDelete, key: key})
	return nil
}

func (t *scaleMemTxn) IndexAdd(index, member string) error {
	t.ops = append(t.ops, scaleOp{kind: scaleIndexAdd, key: index, member: member})
	return nil
}

func (t *scaleMemTxn) IndexRemove(index, member string) error {
	t.ops = append(t.ops, scaleOp{kind: scaleIndexRemove, key: index, member: member})
	return nil
}

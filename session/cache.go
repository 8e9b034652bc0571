package session

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssogate/ssogate/store"
)

// Entry is a validated session with everything the guard needs to pass a
// request upstream, computed once per cache fill.
type Entry struct {
	StoreID  string
	Session  store.Session
	Identity Identity

	// Precomputed header values; shared read-only between requests.
	EmailHeader  []string
	UserHeader   []string
	GroupsHeader []string
	OrgsHeader   []string
	// Boxed values for Caddy placeholders (boxing a string allocates, so
	// it is done once per cache fill, not per request).
	Placeholders [4]any // user id, email, groups, orgs

	expiresAt int64 // unix nanos, absolute expiry
	idle      int64 // nanos, 0 = none
	checkedAt int64 // when the store last confirmed it
	lastSeen  atomic.Int64
	lastTouch atomic.Int64
	jwt       atomic.Pointer[signedJWT]
}

type signedJWT struct {
	audience string
	header   []string // the token, ready to put in a header
	exp      int64
}

// Identity is who the session belongs to, as the upstream sees it.
type Identity struct {
	UserID   string
	Email    string
	Name     string
	Groups   []string
	Orgs     []OrgRole
	ParentID string
}

// OrgRole is one active membership.
type OrgRole struct {
	OrgID string
	Slug  string
	Role  store.Role
}

// RoleIn returns the role in the org with that slug, or "" when none.
func (id *Identity) RoleIn(slug string) store.Role {
	for _, o := range id.Orgs {
		if o.Slug == slug {
			return o.Role
		}
	}
	return ""
}

// alive reports whether the entry is within its absolute and idle limits.
func (e *Entry) alive(now int64) bool {
	if now >= e.expiresAt {
		return false
	}
	return e.idle == 0 || now < e.lastSeen.Load()+e.idle
}

// cache maps cookie values to entries. Lookups take one shard's read
// lock; a plain map per shard keeps the lookup a single hash probe, which
// stays fast when 100k sessions no longer fit in CPU caches (sync.Map's
// trie costs several dependent pointer loads there). The secondary indexes
// used by revocation take a separate mutex.
type cache struct {
	shards [cacheShards]cacheShard

	mu      sync.Mutex
	byStore map[string]string              // store ID -> cookie value
	byUser  map[string]map[string]struct{} // user ID -> store IDs
	gen     atomic.Uint64                  // bumped by every revocation
	size    atomic.Int64
}

const cacheShards = 64

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]*Entry
	_  [40]byte // keep shards on separate cache lines
}

func newCache() *cache {
	c := &cache{byStore: map[string]string{}, byUser: map[string]map[string]struct{}{}}
	for i := range c.shards {
		c.shards[i].m = map[string]*Entry{}
	}
	return c
}

// shard picks a shard from the cookie's last byte: the tag is HMAC output,
// so valid cookies spread evenly.
func (c *cache) shard(cookie string) *cacheShard {
	if cookie == "" {
		return &c.shards[0]
	}
	return &c.shards[cookie[len(cookie)-1]%cacheShards]
}

func (c *cache) get(cookie string) *Entry {
	sh := c.shard(cookie)
	sh.mu.RLock()
	e := sh.m[cookie]
	sh.mu.RUnlock()
	return e
}

func (c *cache) store(cookie string, e *Entry) (replaced bool) {
	sh := c.shard(cookie)
	sh.mu.Lock()
	_, replaced = sh.m[cookie]
	sh.m[cookie] = e
	sh.mu.Unlock()
	return replaced
}

func (c *cache) remove(cookie string) *Entry {
	sh := c.shard(cookie)
	sh.mu.Lock()
	e, ok := sh.m[cookie]
	delete(sh.m, cookie)
	sh.mu.Unlock()
	if !ok {
		return nil
	}
	return e
}

// put caches e unless a revocation happened since gen was read: the store
// read that produced e may predate it.
func (c *cache) put(cookie string, e *Entry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if old, ok := c.byStore[e.StoreID]; ok && old != cookie {
		if c.remove(old) != nil {
			c.size.Add(-1)
		}
	}
	if !c.store(cookie, e) {
		c.size.Add(1)
	}
	c.byStore[e.StoreID] = cookie
	u := c.byUser[e.Identity.UserID]
	if u == nil {
		u = map[string]struct{}{}
		c.byUser[e.Identity.UserID] = u
	}
	u[e.StoreID] = struct{}{}
}

func (c *cache) dropLocked(storeID string) {
	cookie, ok := c.byStore[storeID]
	if !ok {
		return
	}
	delete(c.byStore, storeID)
	if e := c.remove(cookie); e != nil {
		c.size.Add(-1)
		uid := e.Identity.UserID
		if u := c.byUser[uid]; u != nil {
			delete(u, storeID)
			if len(u) == 0 {
				delete(c.byUser, uid)
			}
		}
	}
}

func (c *cache) dropSession(storeID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	c.dropLocked(storeID)
}

func (c *cache) dropUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	for sid := range c.byUser[userID] {
		c.dropLocked(sid)
	}
	delete(c.byUser, userID)
}

func (c *cache) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.mu.Unlock()
	}
	c.byStore = map[string]string{}
	c.byUser = map[string]map[string]struct{}{}
	c.size.Store(0)
}

// sweep removes entries that expired, so the cache does not grow forever.
func (c *cache) sweep(now time.Time) {
	n := now.UnixNano()
	var dead []string
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		for _, e := range sh.m {
			if !e.alive(n) {
				dead = append(dead, e.StoreID)
			}
		}
		sh.mu.RUnlock()
	}
	if len(dead) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sid := range dead {
		c.dropLocked(sid)
	}
}

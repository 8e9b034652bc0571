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

// cache maps cookie values to entries. Reads are lock-free (sync.Map);
// the secondary indexes used by revocation take a mutex.
type cache struct {
	byCookie sync.Map // cookie value -> *Entry

	mu      sync.Mutex
	byStore map[string]string              // store ID -> cookie value
	byUser  map[string]map[string]struct{} // user ID -> store IDs
	gen     atomic.Uint64                  // bumped by every revocation
	size    atomic.Int64
}

func newCache() *cache {
	return &cache{byStore: map[string]string{}, byUser: map[string]map[string]struct{}{}}
}

func (c *cache) get(cookie string) *Entry {
	v, ok := c.byCookie.Load(cookie)
	if !ok {
		return nil
	}
	return v.(*Entry)
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
		c.byCookie.Delete(old)
		c.size.Add(-1)
	}
	if _, loaded := c.byCookie.Swap(cookie, e); !loaded {
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
	if v, loaded := c.byCookie.LoadAndDelete(cookie); loaded {
		c.size.Add(-1)
		uid := v.(*Entry).Identity.UserID
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
	c.byCookie.Clear()
	c.byStore = map[string]string{}
	c.byUser = map[string]map[string]struct{}{}
	c.size.Store(0)
}

// sweep removes entries that expired, so the cache does not grow forever.
func (c *cache) sweep(now time.Time) {
	n := now.UnixNano()
	var dead []string
	c.byCookie.Range(func(_, v any) bool {
		if e := v.(*Entry); !e.alive(n) {
			dead = append(dead, e.StoreID)
		}
		return true
	})
	if len(dead) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sid := range dead {
		c.dropLocked(sid)
	}
}

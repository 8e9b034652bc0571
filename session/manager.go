package session

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ssogate/ssogate/store"
)

// ErrNoSession means there is no valid session for the cookie: missing,
// tampered, expired, idle too long or revoked. Other errors mean the store
// could not be asked, and callers fail closed.
var ErrNoSession = errors.New("session: no valid session")

// Config holds the session timeouts.
type Config struct {
	// TTL is the absolute lifetime of a session (default 12h).
	TTL time.Duration
	// Idle ends a session after this long without a request (default 2h).
	Idle time.Duration
	// Recheck is how long a cached session is trusted before the store is
	// asked again; a safety net behind pub/sub revocation (default 30s).
	Recheck time.Duration
	// JWTLifetime is the expiry of the upstream identity JWT (default 5m).
	JWTLifetime time.Duration
}

func (c *Config) setDefaults() {
	if c.TTL <= 0 {
		c.TTL = 12 * time.Hour
	}
	if c.Idle < 0 {
		c.Idle = 0
	} else if c.Idle == 0 {
		c.Idle = 2 * time.Hour
	}
	if c.Recheck <= 0 {
		c.Recheck = 30 * time.Second
	}
	if c.JWTLifetime <= 0 {
		c.JWTLifetime = 5 * time.Minute
	}
}

// touchEvery bounds store writes for idle tracking: at most one per
// session per this interval.
func (c *Config) touchEvery() time.Duration {
	if c.Idle == 0 {
		return time.Hour
	}
	if t := c.Idle / 10; t < time.Minute {
		return t
	}
	return time.Minute
}

// Manager issues, validates and revokes sessions for one store.
type Manager struct {
	st     *store.Store
	key    []byte
	cfg    Config
	keys   *KeyRing
	log    *zap.Logger
	cache  *cache
	touchQ chan *Entry
	// Now is the clock; tests replace it.
	Now func() time.Time
}

const revokeChannel = "session-revocations"

// NewManager builds a manager; Start must be called before use.
func NewManager(st *store.Store, key []byte, keys *KeyRing, cfg Config, log *zap.Logger) *Manager {
	cfg.setDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	return &Manager{st: st, key: key, cfg: cfg, keys: keys, log: log, cache: newCache(),
		touchQ: make(chan *Entry, 4096), Now: time.Now}
}

// Keys returns the JWT key ring.
func (m *Manager) Keys() *KeyRing { return m.keys }

// Start subscribes to revocations and runs the background workers until
// ctx ends.
func (m *Manager) Start(ctx context.Context) error {
	err := m.st.Backend().Subscribe(ctx, revokeChannel, m.onRevocation, func() {
		m.log.Warn("session revocation channel reset; dropping session cache")
		m.cache.dropAll()
	})
	if err != nil {
		return fmt.Errorf("session: subscribing to revocations: %w", err)
	}
	go m.touchLoop(ctx)
	go m.sweepLoop(ctx)
	return nil
}

func (m *Manager) onRevocation(msg string) {
	kind, id, _ := strings.Cut(msg, ":")
	switch kind {
	case "s":
		m.cache.dropSession(id)
	case "u":
		m.cache.dropUser(id)
	default:
		m.cache.dropAll()
	}
}

// CacheSize is the number of cached sessions on this instance.
func (m *Manager) CacheSize() int64 { return m.cache.size.Load() }

// IssueMeta describes where a sign-in came from.
type IssueMeta struct {
	Method    string // saml, oidc, social, magic, test
	ParentID  string
	UserAgent string
	RemoteIP  string
}

// Issue creates a new session for the user (always a new ID: no fixation)
// and returns the cookie value.
func (m *Manager) Issue(ctx context.Context, user *store.User, meta IssueMeta) (string, *store.Session, error) {
	cookie, sid, err := newCookieValue(m.key)
	if err != nil {
		return "", nil, err
	}
	now := m.Now()
	sess := &store.Session{ID: sid, UserID: user.ID, Email: user.Email, ParentID: meta.ParentID, Method: meta.Method,
		CreatedAt: now, ExpiresAt: now.Add(m.cfg.TTL), LastSeen: now, Idle: m.cfg.Idle,
		UserAgent: truncate(meta.UserAgent, 256), RemoteIP: meta.RemoteIP}
	if err := m.st.CreateSession(ctx, sess); err != nil {
		return "", nil, fmt.Errorf("session: issuing for %s: %w", user.ID, err)
	}
	return cookie, sess, nil
}

// Validate returns the session for a cookie value: from the cache when it
// can, else from the store (one round trip plus the identity).
func (m *Manager) Validate(ctx context.Context, cookie string) (*Entry, error) {
	now := m.Now().UnixNano()
	if e := m.cache.get(cookie); e != nil {
		if !e.alive(now) {
			m.cache.dropSession(e.StoreID)
			return nil, ErrNoSession
		}
		if now-e.checkedAt < int64(m.cfg.Recheck) {
			m.seen(e, now)
			return e, nil
		}
		// Recheck: first save the activity this instance saw, so the
		// store's idle deadline is current when we read it back.
		err := m.st.TouchSession(ctx, e.StoreID, time.Unix(0, e.lastSeen.Load()))
		if errors.Is(err, store.ErrNotFound) {
			m.cache.dropSession(e.StoreID)
			return nil, ErrNoSession
		}
		if err != nil {
			return nil, fmt.Errorf("session: rechecking session: %w", err)
		}
	}
	sid, err := parseCookieValue(m.key, cookie)
	if err != nil {
		return nil, ErrNoSession
	}
	gen := m.cache.gen.Load()
	e, err := m.load(ctx, sid)
	if err != nil {
		return nil, err
	}
	m.cache.put(cookie, e, gen)
	m.seen(e, now)
	return e, nil
}

// seen records activity and queues a store touch when one is due.
func (m *Manager) seen(e *Entry, now int64) {
	e.lastSeen.Store(now)
	last := e.lastTouch.Load()
	if now-last < int64(m.cfg.touchEvery()) || !e.lastTouch.CompareAndSwap(last, now) {
		return
	}
	select {
	case m.touchQ <- e:
	default: // queue full: the next request retries
		e.lastTouch.Store(last)
	}
}

func (m *Manager) load(ctx context.Context, sid string) (*Entry, error) {
	sess, err := m.st.GetSession(ctx, sid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("session: reading session: %w", err)
	}
	id, err := m.identity(ctx, sess)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession // the user is gone
	}
	if err != nil {
		return nil, err
	}
	e := &Entry{StoreID: sid, Session: *sess, Identity: *id,
		expiresAt: sess.ExpiresAt.UnixNano(), idle: int64(sess.Idle), checkedAt: m.Now().UnixNano()}
	e.lastSeen.Store(sess.LastSeen.UnixNano())
	e.lastTouch.Store(sess.LastSeen.UnixNano())
	e.EmailHeader = []string{id.Email}
	e.UserHeader = []string{id.UserID}
	e.GroupsHeader = []string{strings.Join(id.Groups, ",")}
	orgs := make([]string, len(id.Orgs))
	for i, o := range id.Orgs {
		orgs[i] = o.Slug + ":" + string(o.Role)
	}
	e.OrgsHeader = []string{strings.Join(orgs, ",")}
	e.Placeholders = [4]any{id.UserID, id.Email, e.GroupsHeader[0], e.OrgsHeader[0]}
	return e, nil
}

// identity reads the user and their active memberships.
func (m *Manager) identity(ctx context.Context, sess *store.Session) (*Identity, error) {
	u, err := m.st.GetUser(ctx, sess.UserID)
	if err != nil {
		return nil, fmt.Errorf("session: reading user: %w", err)
	}
	ms, err := m.st.ListUserMemberships(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("session: reading memberships: %w", err)
	}
	id := &Identity{UserID: u.ID, Email: u.Email, Name: u.Name, Groups: u.IdPGroups, ParentID: sess.ParentID}
	for _, ms := range ms {
		if ms.Status != store.MemberActive {
			continue
		}
		o, err := m.st.GetOrg(ctx, ms.OrgID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("session: reading org: %w", err)
		}
		id.Orgs = append(id.Orgs, OrgRole{OrgID: o.ID, Slug: o.Slug, Role: ms.Role})
	}
	sort.Slice(id.Orgs, func(i, j int) bool { return id.Orgs[i].Slug < id.Orgs[j].Slug })
	return id, nil
}

// JWT returns the identity JWT for audience, signing a new one only when
// the cached one is close to expiry.
func (m *Manager) JWT(e *Entry, audience string) (string, error) {
	h, err := m.JWTHeader(e, audience)
	if err != nil {
		return "", err
	}
	return h[0], nil
}

// JWTHeader is JWT as a ready header value (shared, read-only).
func (m *Manager) JWTHeader(e *Entry, audience string) ([]string, error) {
	now := m.Now()
	if j := e.jwt.Load(); j != nil && j.audience == audience && now.UnixNano() < j.exp-int64(m.cfg.JWTLifetime/5) {
		return j.header, nil
	}
	if err := m.keys.maybeReload(context.Background()); err != nil {
		m.log.Warn("reloading jwt keys", zap.Error(err))
	}
	exp := now.Add(m.cfg.JWTLifetime)
	if sessExp := time.Unix(0, e.expiresAt); sessExp.Before(exp) {
		exp = sessExp
	}
	c := &Claims{Email: e.Identity.Email, Name: e.Identity.Name, Groups: e.Identity.Groups, SID: e.StoreID[:16]}
	c.Issuer, c.Subject = Issuer, e.Identity.UserID
	c.Audience = []string{audience}
	c.IssuedAt, c.NotBefore = jwtTime(now.Add(-5*time.Second)), jwtTime(now.Add(-5*time.Second))
	c.Expiry = jwtTime(exp)
	for _, o := range e.Identity.Orgs {
		c.Orgs = append(c.Orgs, o.Slug+":"+string(o.Role))
	}
	tok, err := m.keys.Sign(c)
	if err != nil {
		return nil, err
	}
	j := &signedJWT{audience: audience, header: []string{tok}, exp: exp.UnixNano()}
	e.jwt.Store(j)
	return j.header, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

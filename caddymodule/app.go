package caddymodule

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ssogate/ssogate/domains"
	"github.com/ssogate/ssogate/mail"
	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/session"
	"github.com/ssogate/ssogate/store"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the `ssogate` Caddy app: the state every ssogate handler in the
// config shares — the store, the session manager and background workers.
type App struct {
	// Storage selects the backend. Default: bolt in Caddy's data directory.
	Storage *StorageConfig `json:"storage,omitempty"`
	// Secret is the master key for cookies and sign-in state (32+ bytes;
	// placeholders such as {env.SSOGATE_SECRET} are expanded). Default: a
	// random key generated once and kept in the store.
	Secret string `json:"secret,omitempty"`
	// GroupPrefix marks IdP groups that map to orgs and roles. Default: "ssogate-".
	GroupPrefix string `json:"group_prefix,omitempty"`
	// DNSResolver is the host:port used for domain verification. Default: the system resolver.
	DNSResolver string `json:"dns_resolver,omitempty"`
	// SessionTTL is the absolute lifetime of a session. Default: 12h.
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`
	// SessionIdle ends sessions without activity for this long. Default: 2h.
	SessionIdle caddy.Duration `json:"session_idle,omitempty"`
	// DomainCheckInterval is how often pending domains are re-checked in
	// DNS. Default: 1m.
	DomainCheckInterval caddy.Duration `json:"domain_check_interval,omitempty"`
	// DomainPendingTimeout marks a domain failed when it has not verified
	// this long after it was added. Default: 7 days.
	DomainPendingTimeout caddy.Duration `json:"domain_pending_timeout,omitempty"`
	// DomainTXTLabel is the TXT record's name under the domain. Default: _ssogate-challenge.
	DomainTXTLabel string `json:"domain_txt_label,omitempty"`
	// BlockedDomains can never be claimed, on top of the built-in list of
	// shared mail providers (gmail.com, outlook.com, …).
	BlockedDomains []string `json:"blocked_domains,omitempty"`
	// Mail is how ssogate sends mail (sign-in links, invitations). Default:
	// an outbox folder in Caddy's data directory, logged, for machines with
	// no mail server.
	Mail *MailConfig `json:"mail,omitempty"`
	// Social lists OIDC social login providers (Google, or any OIDC issuer).
	Social []SocialProvider `json:"social,omitempty"`
	// AllowPrivateIdPs lets connections and social providers use IdPs on
	// loopback and private addresses (and plain http on loopback). Off by
	// default: tenant owners choose IdP URLs, and the gateway must not
	// fetch from its own network for them.
	AllowPrivateIdPs bool `json:"allow_private_idps,omitempty"`
	// HealthInterval is how often the store is probed; while it fails,
	// guarded requests get 503. Default: 1s.
	HealthInterval caddy.Duration `json:"health_interval,omitempty"`

	// MetadataRefresh is how often SAML connections made from a metadata
	// URL fetch it again (default 12h; negative turns it off). A changed
	// document is stored when it parses, has not expired and names an IdP
	// signing key; a failed fetch keeps the stored one.
	MetadataRefresh caddy.Duration `json:"metadata_refresh,omitempty"`

	backend   store.Backend
	poolKey   string
	store     *store.Store
	sessions  *session.Manager
	domains   *domains.Service
	mailer    *mail.Queue
	outbox    *mail.OutboxSender // when mail goes to the outbox
	health    *healthState
	logger    *zap.Logger
	metrics   *metrics
	cancel    context.CancelFunc
	csrfKey   []byte
	sp        *spKeyState
	idpClient *http.Client
	sitesMu   *sync.Mutex
	sites     []string
}

// spKeyState caches the SAML SP key pair once loaded from the store.
type spKeyState struct {
	mu   sync.Mutex
	priv *rsa.PrivateKey
	cert *x509.Certificate
}

// MailConfig selects the mail sender.
type MailConfig struct {
	// URL is smtp://user:pass@host:587 (STARTTLS), smtps://…:465, or empty
	// for the outbox.
	URL string `json:"url,omitempty"`
	// From is the sender mailbox, e.g. "Acme SSO <sso@example.com>".
	From string `json:"from,omitempty"`
	// Outbox is the folder for the outbox sender. Default: ssogate/outbox in Caddy's data directory.
	Outbox string `json:"outbox,omitempty"`
}

// SocialProvider is one social login button.
type SocialProvider struct {
	// Name is the provider's path segment and label ("google", "github-enterprise", …).
	Name string `json:"name"`
	// Issuer is the OIDC issuer. Default for "google": https://accounts.google.com.
	Issuer       string `json:"issuer,omitempty"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	// HostedDomain, for Google, limits sign-in to one Workspace domain.
	HostedDomain string `json:"hosted_domain,omitempty"`
}

// healthState is the store's last known reachability.
type healthState struct {
	ok      atomic.Bool
	lastErr atomic.Pointer[string]
}

// StorageConfig selects and configures the storage backend.
type StorageConfig struct {
	// Backend is "bolt" (default) or "redis".
	Backend string `json:"backend,omitempty"`
	// Path is the bolt file. Default: ssogate/ssogate.db in Caddy's data directory.
	Path string `json:"path,omitempty"`
	// URL is the Redis URL: redis://, rediss://, redis+sentinel:// or redis+cluster://.
	URL string `json:"url,omitempty"`
	// KeyPrefix namespaces Redis keys. Default: "ssogate:".
	KeyPrefix string `json:"key_prefix,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "ssogate", New: func() caddy.Module { return new(App) }}
}

var socialNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)

// DefaultGroupPrefix is the group prefix when none is configured.
const DefaultGroupPrefix = "ssogate-"

// Provision opens the store and builds the session manager.
func (a *App) Provision(ctx caddy.Context) error {
	if a.GroupPrefix == "" {
		a.GroupPrefix = DefaultGroupPrefix
	}
	if a.Storage == nil {
		a.Storage = &StorageConfig{}
	}
	if a.Storage.Backend == "" {
		a.Storage.Backend = "bolt"
	}
	if a.Storage.Backend == "bolt" && a.Storage.Path == "" {
		a.Storage.Path = filepath.Join(caddy.AppDataDir(), "ssogate", "ssogate.db")
	}
	if err := a.Validate(); err != nil {
		return err
	}
	return a.provision(ctx, ctx.Logger(), ctx.GetMetricsRegistry())
}

// provision does the work of Provision with its dependencies explicit, so
// tests and benchmarks can build an App without a running Caddy.
func (a *App) provision(ctx context.Context, logger *zap.Logger, reg *prometheus.Registry) error {
	a.logger = logger
	m, err := newMetrics(reg)
	if err != nil {
		return err
	}
	a.metrics = m
	b, key, err := openBackend(a.Storage)
	if err != nil {
		return err
	}
	a.backend, a.poolKey = instrumentedBackend{Backend: b, m: m}, key
	a.store = store.New(a.backend)
	a.health = &healthState{}
	a.sp = &spKeyState{}
	a.idpClient = newIdPClient(a.AllowPrivateIdPs)
	a.sitesMu = &sync.Mutex{}
	a.health.ok.Store(true)

	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	secret, err := a.masterSecret(pctx)
	if err != nil {
		return err
	}
	keys, err := session.NewKeyRing(pctx, a.store, 0)
	if err != nil {
		return fmt.Errorf("ssogate: %w", err)
	}
	a.csrfKey = session.DeriveKey(secret, "csrf")
	blocked := map[string]bool{}
	for _, d := range a.BlockedDomains {
		n, err := policy.NormalizeDomain(d, nil)
		if err != nil && !isConsumerErr(err) {
			return fmt.Errorf("ssogate: blocked_domains: %q: %w", d, err)
		}
		if n == "" {
			n = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
		}
		blocked[n] = true
	}
	a.domains = &domains.Service{Store: a.store, Resolver: domains.Resolver{Server: a.DNSResolver},
		Label: a.DomainTXTLabel, Blocked: blocked, PendingTimeout: time.Duration(a.DomainPendingTimeout),
		Audit: a.auditCtx, Logger: a.logger.Named("domains")}
	if err := a.provisionMail(); err != nil {
		return err
	}
	a.sessions = session.NewManager(a.store, session.DeriveKey(secret, session.CookieKeyPurpose), keys, session.Config{
		TTL: time.Duration(a.SessionTTL), Idle: time.Duration(a.SessionIdle),
	}, a.logger.Named("session"))
	return nil
}

// Validate checks the configuration without side effects.
func (a *App) Validate() error {
	if a.Storage != nil {
		switch a.Storage.Backend {
		case "", "bolt":
		case "redis":
			if a.Storage.URL == "" {
				return errors.New("ssogate: storage redis needs a URL, e.g. storage redis redis://127.0.0.1:6379/0")
			}
		default:
			return fmt.Errorf("ssogate: unknown storage backend %q (want bolt or redis)", a.Storage.Backend)
		}
	}
	if a.SessionTTL < 0 || a.SessionIdle < 0 {
		return errors.New("ssogate: session durations must not be negative")
	}
	if a.SessionIdle > 0 && a.SessionTTL > 0 && a.SessionIdle > a.SessionTTL {
		return fmt.Errorf("ssogate: session idle (%s) is longer than ttl (%s)", time.Duration(a.SessionIdle), time.Duration(a.SessionTTL))
	}
	if a.Secret != "" {
		s := caddy.NewReplacer().ReplaceAll(a.Secret, "")
		if s == "" {
			return fmt.Errorf("ssogate: secret %q is empty after expanding placeholders (is the environment variable set?)", a.Secret)
		}
		if len(s) < 32 {
			return fmt.Errorf("ssogate: secret is %d bytes; use at least 32 random bytes (openssl rand -base64 32)", len(s))
		}
	}
	if a.DNSResolver != "" {
		if _, _, err := net.SplitHostPort(a.DNSResolver); err != nil {
			return fmt.Errorf("ssogate: dns_resolver %q must be host:port, e.g. 127.0.0.1:53", a.DNSResolver)
		}
	}
	if a.DomainTXTLabel != "" && (strings.ContainsAny(a.DomainTXTLabel, ". ") || len(a.DomainTXTLabel) > 63) {
		return fmt.Errorf("ssogate: domain_txt_label %q must be one DNS label", a.DomainTXTLabel)
	}
	seen := map[string]bool{}
	for _, p := range a.Social {
		if !socialNameRe.MatchString(p.Name) || seen[p.Name] {
			return fmt.Errorf("ssogate: social %q: names are unique, lower-case letters, digits and hyphens", p.Name)
		}
		seen[p.Name] = true
		if p.Issuer == "" && p.Name != "google" {
			return fmt.Errorf("ssogate: social %s needs an issuer (only google has a default)", p.Name)
		}
		if p.ClientID == "" || p.ClientSecret == "" {
			return fmt.Errorf("ssogate: social %s needs client_id and client_secret", p.Name)
		}
	}
	if strings.ContainsAny(a.GroupPrefix, " ,") {
		return fmt.Errorf("ssogate: group_prefix %q must not contain spaces or commas", a.GroupPrefix)
	}
	return nil
}

// masterSecret returns the configured secret, or one generated once and
// kept in the store so every instance sharing the store agrees on it.
func (a *App) masterSecret(ctx context.Context) ([]byte, error) {
	if a.Secret != "" {
		return []byte(caddy.NewReplacer().ReplaceAll(a.Secret, "")), nil
	}
	raw, err := a.store.UpdateSetting(ctx, "master-secret", func(old []byte, exists bool) ([]byte, error) {
		if exists {
			return old, nil
		}
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		return b, nil
	})
	if err != nil {
		return nil, fmt.Errorf("ssogate: loading generated secret from %s store: %w", a.backend.Name(), err)
	}
	return raw, nil
}

// Start runs the background workers.
func (a *App) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	if err := a.sessions.Start(ctx); err != nil {
		cancel()
		return fmt.Errorf("ssogate: %w", err)
	}
	running.Lock()
	running.app = a
	running.Unlock()
	go a.healthLoop(ctx)
	go a.domains.Run(ctx, time.Duration(a.DomainCheckInterval))
	a.mailer.Start(ctx)
	go a.gcLoop(ctx)
	go a.metadataLoop(ctx)
	a.logger.Info("ssogate started", zap.String("storage", a.backend.Name()))
	return nil
}

// Stop ends the background workers.
func (a *App) Stop() error {
	running.Lock()
	if running.app == a {
		running.app = nil
	}
	running.Unlock()
	if a.cancel != nil {
		a.cancel()
	}
	return nil
}

// Cleanup releases the pooled backend.
func (a *App) Cleanup() error {
	if a.cancel != nil {
		a.cancel()
	}
	if a.poolKey != "" {
		if _, err := backends.Delete(a.poolKey); err != nil {
			return fmt.Errorf("ssogate: releasing storage: %w", err)
		}
	}
	return nil
}

// provisionMail builds the mail queue over SMTP or the outbox.
func (a *App) provisionMail() error {
	mc := a.Mail
	if mc == nil {
		mc = &MailConfig{}
	}
	var sender mail.Sender
	if mc.URL != "" {
		cfg, err := mail.ParseURL(caddy.NewReplacer().ReplaceAll(mc.URL, ""))
		if err != nil {
			return fmt.Errorf("ssogate: mail: %w", err)
		}
		from := mc.From
		if from == "" {
			return errors.New(`ssogate: mail needs a sender: mail <url> { from "Acme SSO <sso@example.com>" }`)
		}
		s, err := mail.NewSMTP(cfg, from)
		if err != nil {
			return fmt.Errorf("ssogate: mail: %w", err)
		}
		sender = s
	} else {
		dir := mc.Outbox
		if dir == "" {
			dir = filepath.Join(caddy.AppDataDir(), "ssogate", "outbox")
		}
		a.outbox = &mail.OutboxSender{Dir: dir, Logger: a.logger.Named("mail.outbox")}
		sender = a.outbox
	}
	a.mailer = mail.NewQueue(sender, a.logger.Named("mail"), mail.QueueOptions{})
	return nil
}

// isConsumerErr tells "already a blocked mail provider", which is fine in
// blocked_domains, from a real mistake.
func isConsumerErr(err error) bool {
	var de *policy.DomainError
	return errors.As(err, &de) && de.Code == "domain_consumer"
}

// Store returns the directory (for tests and the admin API).
func (a *App) Store() *store.Store { return a.store }

// Sessions returns the session manager.
func (a *App) Sessions() *session.Manager { return a.sessions }

// Healthy reports whether the store answered the last probe.
func (a *App) Healthy() bool { return a.health.ok.Load() }

// storeFailed marks the store down after an error seen on a request, so
// cached sessions stop passing until the next successful probe.
func (a *App) storeFailed(err error) {
	if a.health.ok.CompareAndSwap(true, false) {
		a.logger.Error("store unreachable; failing closed", zap.String("storage", a.backend.Name()), zap.Error(err))
	}
	msg := err.Error()
	a.health.lastErr.Store(&msg)
}

func (a *App) healthLoop(ctx context.Context) {
	every := time.Duration(a.HealthInterval)
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.metrics.cached.Set(float64(a.sessions.CacheSize()))
		pctx, cancel := context.WithTimeout(ctx, every)
		err := a.store.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			a.storeFailed(err)
			continue
		}
		if a.health.ok.CompareAndSwap(false, true) {
			// Revocations may have been missed while the store was away.
			a.sessions.DropCache()
			a.logger.Info("store reachable again", zap.String("storage", a.backend.Name()))
		}
	}
}

func (a *App) gcLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n, err := a.backend.GarbageCollect(ctx, now)
			if err != nil {
				a.logger.Warn("store garbage collection", zap.Error(err))
			} else if n > 0 {
				a.logger.Debug("store garbage collection", zap.Int("removed", n))
			}
		}
	}
}

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)

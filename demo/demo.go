// Package demo runs the whole of ssogate on 127.0.0.1 — `ssogate demo`:
// the gateway (Caddy with the ssogate app and handler, in this process),
// a demo app behind it that shows who is signed in, a SAML IdP (crewjam's
// samlidp) and an OIDC provider with a few people in prefixed groups, a
// DNS server for the demo domain, and a tools page with the DNS records
// and the mail outbox. It seeds the parent org "Acme" with its primary
// owner and prints a walkthrough that follows the enterprise SSO guide:
// capture the domain, add SSO, test it, enforce it, provision by SCIM,
// map groups, remove a member.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	// Caddy's standard modules (reverse_proxy, file storage, …) and
	// ssogate's, as in cmd/ssogate.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/ssogate/ssogate/caddymodule"
	"github.com/ssogate/ssogate/internal/idp/oidcidp"
	"github.com/ssogate/ssogate/internal/idp/samlidp"
	"github.com/ssogate/ssogate/internal/txtdns"
	"github.com/ssogate/ssogate/mail"
)

// Default ports, one flag each.
const (
	DefaultGatewayPort = 8080
	DefaultAppPort     = 8081
	DefaultSAMLPort    = 8082
	DefaultOIDCPort    = 8083
	DefaultToolsPort   = 8084
	DefaultDNSPort     = 8053
	DefaultAdminPort   = 2019
)

// Config says where the demo's parts listen (all on 127.0.0.1; port 0
// means any free port) and which store the gateway uses.
type Config struct {
	GatewayPort, AppPort, SAMLPort, OIDCPort, ToolsPort, DNSPort, AdminPort int
	// Redis, if set, is a Redis URL: the gateway stores everything there
	// (under a key prefix of its own, removed at Close) instead of in a
	// bolt file in the demo's temporary folder.
	Redis string
	// Verbose sends Caddy's and ssogate's logs to stderr instead of a file
	// in the demo's folder.
	Verbose bool
}

// DefaultConfig is the demo on its default ports with bolt.
func DefaultConfig() Config {
	return Config{GatewayPort: DefaultGatewayPort, AppPort: DefaultAppPort, SAMLPort: DefaultSAMLPort,
		OIDCPort: DefaultOIDCPort, ToolsPort: DefaultToolsPort, DNSPort: DefaultDNSPort, AdminPort: DefaultAdminPort}
}

// Demo is a running demo. Only one can run per process (Caddy's
// configuration is process-wide).
type Demo struct {
	Env Env

	dir         string
	logFile     string
	verbose     bool
	saml        *samlidp.IdP
	oidc        *oidcidp.OP
	dns         *txtdns.Server
	servers     []*http.Server
	listeners   []net.Listener // not yet served
	caddyOn     bool
	logging     json.RawMessage // Caddy's logging config, kept while stopping
	redisURL    string
	redisPrefix string
	closeOnce   sync.Once
	closeErr    error
}

// Start runs the demo. On error, whatever was started is stopped again.
func Start(ctx context.Context, cfg Config) (_ *Demo, err error) {
	d := &Demo{verbose: cfg.Verbose}
	defer func() {
		if err != nil {
			_ = d.Close()
		}
	}()
	if d.dir, err = os.MkdirTemp("", "ssogate-demo-"); err != nil {
		return nil, fmt.Errorf("demo: making a temporary folder: %w", err)
	}
	d.logFile = filepath.Join(d.dir, "caddy.log")

	// Take every port first, so a busy one fails before anything starts.
	appL, err := d.listen("demo app", "app-port", cfg.AppPort)
	if err != nil {
		return nil, err
	}
	samlL, err := d.listen("SAML IdP", "saml-port", cfg.SAMLPort)
	if err != nil {
		return nil, err
	}
	oidcL, err := d.listen("OIDC provider", "oidc-port", cfg.OIDCPort)
	if err != nil {
		return nil, err
	}
	toolsL, err := d.listen("demo tools", "tools-port", cfg.ToolsPort)
	if err != nil {
		return nil, err
	}
	// Caddy listens itself: these two are held until just before it starts.
	gwL, err := d.listen("gateway", "gateway-port", cfg.GatewayPort)
	if err != nil {
		return nil, err
	}
	adminL, err := d.listen("Caddy admin", "admin-port", cfg.AdminPort)
	if err != nil {
		return nil, err
	}
	gwPort, adminPort := gwL.Addr().(*net.TCPAddr).Port, adminL.Addr().(*net.TCPAddr).Port
	if d.dns, err = txtdns.Start(net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.DNSPort))); err != nil {
		return nil, portError("DNS", "dns-port", cfg.DNSPort, err)
	}

	e := &d.Env
	e.Gateway = fmt.Sprintf("http://127.0.0.1:%d", gwPort)
	e.App = "http://" + appL.Addr().String()
	e.SAML = "http://" + samlL.Addr().String()
	e.OIDC = "http://" + oidcL.Addr().String()
	e.Tools = "http://" + toolsL.Addr().String()
	e.DNS = d.dns.Addr
	e.Admin = fmt.Sprintf("127.0.0.1:%d", adminPort)
	e.Dir = d.dir
	e.Log = d.logFile + " (or run with --verbose)"
	if d.verbose {
		e.Log = "stderr"
	}
	e.Store = "bolt, in " + filepath.Join(d.dir, "ssogate.db")
	if cfg.Redis != "" {
		d.redisURL, d.redisPrefix = cfg.Redis, "ssogate-demo-"+randomHex(4)+":"
		e.Store = "redis, " + redactURL(cfg.Redis) + " under the key prefix " + d.redisPrefix
	}

	if err := d.startIdPs(samlL, oidcL); err != nil {
		return nil, err
	}
	d.serve(appL, newApp(e.Gateway, e.Tools))
	for _, l := range []net.Listener{gwL, adminL} {
		_ = l.Close()
		d.handedOver(l)
	}
	if err := d.startGateway(ctx, gwPort, adminPort); err != nil {
		return nil, err
	}
	if err := d.seed(ctx); err != nil {
		return nil, err
	}
	t := &tools{env: e, dns: d.dns, outbox: &mail.OutboxSender{Dir: filepath.Join(d.dir, "outbox")},
		saml: d.saml, oidc: d.oidc, client: &http.Client{Timeout: 10 * time.Second}, logger: logger().Named("tools")}
	d.serve(toolsL, t.handler())
	return d, nil
}

// logger is the demo's logger: Caddy's, so the demo's lines go where
// Caddy's go.
func logger() *zap.Logger { return caddy.Log().Named("demo") }

func (d *Demo) listen(what, flag string, port int) (net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, portError(what, flag, port, err)
	}
	d.listeners = append(d.listeners, l)
	return l, nil
}

func portError(what, flag string, port int, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("the %s port %d is in use: stop what uses it, or choose another port with --%s: %w", what, port, flag, err)
	}
	return fmt.Errorf("cannot listen on 127.0.0.1:%d for the %s (choose another port with --%s): %w", port, what, flag, err)
}

func (d *Demo) serve(l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	d.servers = append(d.servers, srv)
	d.handedOver(l)
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger().Error("demo server stopped", zap.String("address", l.Addr().String()), zap.Error(err))
		}
	}()
}

// handedOver forgets a listener that a server now owns.
func (d *Demo) handedOver(l net.Listener) {
	d.listeners = slices.DeleteFunc(d.listeners, func(x net.Listener) bool { return x == l })
}

// startIdPs runs both IdPs with the demo's people. Each trusts this
// gateway only: the SAML IdP fetches the metadata of the gateway's SAML
// connections on first use, the OIDC provider knows one client whose
// redirect URIs are the gateway's OIDC callbacks.
func (d *Demo) startIdPs(samlL, oidcL net.Listener) error {
	e := &d.Env
	var err error
	sugar := func(name string) func(string, ...any) {
		return func(format string, args ...any) { logger().Named(name).Sugar().Infof(format, args...) }
	}
	d.saml, err = samlidp.Start(samlidp.Options{Listener: samlL, Logf: sugar("samlidp"), TrustSPsUnder: e.Gateway + "/.ssogate/saml/"})
	if err != nil {
		return fmt.Errorf("demo: SAML IdP: %w", err)
	}
	d.handedOver(samlL)
	d.oidc, err = oidcidp.Start(oidcidp.Options{Listener: oidcL, LoginForm: true, Name: "Demo OIDC provider"})
	if err != nil {
		return fmt.Errorf("demo: OIDC provider: %w", err)
	}
	d.handedOver(oidcL)
	d.oidc.AddClient(OIDCClientID, OIDCClientSecret, e.Gateway+"/.ssogate/oidc/*/callback")
	for _, p := range People {
		if err := d.saml.AddUser(samlidp.User{Name: p.Email, Password: Password, Email: p.Email,
			GivenName: p.GivenName, Surname: p.FamilyName, Groups: p.Groups}); err != nil {
			return fmt.Errorf("demo: SAML IdP: %w", err)
		}
		d.oidc.AddUser(oidcidp.User{Subject: "demo-" + strings.Split(p.Email, "@")[0], Email: p.Email, EmailVerified: true,
			Name: p.GivenName + " " + p.FamilyName, GivenName: p.GivenName, FamilyName: p.FamilyName,
			Groups: p.Groups, Password: Password})
	}
	return nil
}

// caddyfile is the gateway's configuration.
func (d *Demo) caddyfile(gwPort, adminPort int) string {
	storage := "storage bolt " + quote(filepath.Join(d.dir, "ssogate.db"))
	if d.redisURL != "" {
		storage = "storage redis " + quote(d.redisURL) + " {\n\t\t\tkey_prefix " + d.redisPrefix + "\n\t\t}"
	}
	output := "output file " + quote(d.logFile)
	if d.verbose {
		output = "output stderr"
	}
	return fmt.Sprintf(`{
	admin 127.0.0.1:%[1]d
	http_port %[2]d
	auto_https off
	persist_config off
	storage file_system %[3]s
	log {
		%[4]s
	}
	ssogate {
		%[5]s
		dns_resolver %[6]s
		domain_check_interval 2s
		allow_private_idps
		mail outbox %[7]s
	}
}

%[8]s {
	ssogate %[8]s
	reverse_proxy %[9]s
}
`, adminPort, gwPort, quote(filepath.Join(d.dir, "caddy")), output, storage, d.dns.Addr,
		quote(filepath.Join(d.dir, "outbox")), d.Env.Gateway, strings.TrimPrefix(d.Env.App, "http://"))
}

func quote(s string) string { return strconv.Quote(s) }

// startGateway runs Caddy in this process with the generated config.
func (d *Demo) startGateway(ctx context.Context, gwPort, adminPort int) error {
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(d.caddyfile(gwPort, adminPort)), nil)
	if err != nil {
		return fmt.Errorf("demo: the gateway's Caddyfile: %w", err)
	}
	for _, w := range warnings {
		logger().Warn("Caddyfile", zap.String("warning", w.String()))
	}
	var parsed struct {
		Logging json.RawMessage `json:"logging"`
	}
	if err := json.Unmarshal(cfg, &parsed); err != nil {
		return fmt.Errorf("demo: the gateway's config: %w", err)
	}
	d.logging = parsed.Logging
	if err := caddy.Load(cfg, true); err != nil {
		if d.redisURL != "" {
			return fmt.Errorf("demo: starting the gateway (Caddy) with --redis %s: %w", redactURL(d.redisURL), err)
		}
		return fmt.Errorf("demo: starting the gateway (Caddy): %w", err)
	}
	d.caddyOn = true
	// Caddy answers once Load returns; wait for the store to be healthy.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(d.Env.Gateway + "/.ssogate/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: the gateway did not become healthy at %s/.ssogate/healthz (logs: %s)", d.Env.Gateway, d.Env.Log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// seed makes the parent org Acme with its org acme and primary owner
// (ssogate's bootstrap, through Caddy's admin endpoint as `ssogate admin
// bootstrap` does), and a second org, research, through the admin API.
func (d *Demo) seed(ctx context.Context) error {
	body, _ := json.Marshal(caddymodule.BootstrapRequest{Parent: ParentName, Org: OrgSlug, Owner: Owner})
	var res caddymodule.BootstrapResult
	admin := "http://" + d.Env.Admin
	if err := call(ctx, http.MethodPost, admin+"/ssogate/bootstrap", map[string]string{"Origin": admin}, body, http.StatusOK, &res); err != nil {
		return fmt.Errorf("demo: bootstrap: %w", err)
	}
	d.Env.APIKey, d.Env.LoginURL = res.APIKey, res.LoginURL
	body, _ = json.Marshal(map[string]string{"slug": SecondOrgSlug, "name": SecondOrgName})
	if err := call(ctx, http.MethodPost, d.Env.api("/orgs"), map[string]string{"Authorization": "Bearer " + res.APIKey,
		"Content-Type": "application/json"}, body, http.StatusCreated, nil); err != nil {
		return fmt.Errorf("demo: creating the org %s: %w", SecondOrgSlug, err)
	}
	return nil
}

// call makes a request and decodes a JSON answer with the wanted status.
func call(ctx context.Context, method, u string, header map[string]string, body []byte, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, bytes.TrimSpace(raw))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	return nil
}

// Close stops everything the demo started and removes its folder (and,
// with Redis, its keys). It is safe to call more than once.
func (d *Demo) Close() error {
	d.closeOnce.Do(func() { d.closeErr = d.close() })
	return d.closeErr
}

func (d *Demo) close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, l := range d.listeners {
		_ = l.Close()
	}
	for _, s := range d.servers {
		if err := s.Shutdown(ctx); err != nil {
			_ = s.Close()
		}
	}
	if d.caddyOn {
		// Replacing the config with an empty one stops the apps and the
		// admin endpoint, keeping the logs where they were.
		stop, _ := json.Marshal(map[string]any{
			"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
			"logging": d.logging,
		})
		if err := caddy.Load(stop, true); err != nil {
			errs = append(errs, fmt.Errorf("demo: stopping the gateway: %w", err))
		}
		if err := caddy.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("demo: stopping the gateway: %w", err))
		}
	}
	if d.saml != nil {
		errs = append(errs, d.saml.Close())
	}
	if d.oidc != nil {
		errs = append(errs, d.oidc.Close())
	}
	if d.dns != nil {
		errs = append(errs, d.dns.Close())
	}
	if d.redisPrefix != "" {
		errs = append(errs, d.dropRedisKeys(ctx))
	}
	if d.dir != "" {
		errs = append(errs, os.RemoveAll(d.dir))
	}
	return errors.Join(errs...)
}

// dropRedisKeys removes the demo's keys from Redis (standalone servers;
// with Sentinel or Cluster they are left, and logged).
func (d *Demo) dropRedisKeys(ctx context.Context) error {
	opts, err := goredis.ParseURL(d.redisURL)
	if err != nil {
		logger().Warn("the demo's Redis keys were left in place", zap.String("prefix", d.redisPrefix), zap.Error(err))
		return nil
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	tag := "{" + strings.TrimSuffix(d.redisPrefix, ":") + "}"
	iter := c.Scan(ctx, 0, tag+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("demo: listing the demo's Redis keys: %w", err)
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := c.Del(ctx, keys[:n]...).Err(); err != nil {
			return fmt.Errorf("demo: removing the demo's Redis keys: %w", err)
		}
		keys = keys[n:]
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redactURL hides a password in a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		scheme, _, _ := strings.Cut(s, "://")
		return scheme + "://…"
	}
	return u.Redacted()
}

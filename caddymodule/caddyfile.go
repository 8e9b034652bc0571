package caddymodule

import (
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("ssogate", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("ssogate", parseHandlerDirective)
	// Users need no `order` line. ssogate sits with the other auth
	// directives (right after basic_auth): ahead of reverse_proxy, and also
	// ahead of handle/route/respond, so those blocks are guarded too.
	httpcaddyfile.RegisterDirectiveOrder("ssogate", httpcaddyfile.After, "basic_auth")
}

func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "ssogate", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile parses the global `ssogate` block:
//
//	ssogate {
//		storage bolt [<path>] | redis <url> [{ key_prefix <prefix> }]
//		secret <value>
//		group_prefix <prefix>
//		dns_resolver <host:port>
//		session { ttl <duration>; idle <duration> }
//		domain_check_interval <duration>
//		domain_pending_timeout <duration>
//		domain_txt_label <label>
//		blocked_domains <domain>...
//		mail <smtp-url> { from <mailbox> } | mail outbox [<dir>]
//		social <name> { issuer <url>; client_id <id>; client_secret <secret>; hosted_domain <domain> }
//		allow_private_idps
//		health_interval <duration>
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "storage":
			if err := a.parseStorage(d); err != nil {
				return err
			}
		case "secret":
			if !d.NextArg() {
				return d.ArgErr()
			}
			a.Secret = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		case "group_prefix":
			if !d.AllArgs(&a.GroupPrefix) {
				return d.ArgErr()
			}
		case "dns_resolver":
			if !d.AllArgs(&a.DNSResolver) {
				return d.ArgErr()
			}
		case "domain_check_interval", "domain_pending_timeout":
			name := d.Val()
			dur, err := parseDuration(d)
			if err != nil {
				return err
			}
			if name == "domain_check_interval" {
				a.DomainCheckInterval = dur
			} else {
				a.DomainPendingTimeout = dur
			}
		case "domain_txt_label":
			if !d.AllArgs(&a.DomainTXTLabel) {
				return d.ArgErr()
			}
		case "blocked_domains":
			a.BlockedDomains = append(a.BlockedDomains, d.RemainingArgs()...)
			if len(a.BlockedDomains) == 0 {
				return d.ArgErr()
			}
		case "mail":
			if err := a.parseMail(d); err != nil {
				return err
			}
		case "social":
			if err := a.parseSocial(d); err != nil {
				return err
			}
		case "allow_private_idps":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.AllowPrivateIdPs = true
		case "health_interval":
			dur, err := parseDuration(d)
			if err != nil {
				return err
			}
			a.HealthInterval = dur
		case "metadata_refresh":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return d.ArgErr()
			}
			if args[0] == "off" {
				a.MetadataRefresh = -1
				continue
			}
			dur, err := durationValue(d, args[0])
			if err != nil {
				return err
			}
			a.MetadataRefresh = dur
		case "session":
			if d.NextArg() {
				return d.ArgErr()
			}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				switch d.Val() {
				case "ttl":
					dur, err := parseDuration(d)
					if err != nil {
						return err
					}
					a.SessionTTL = dur
				case "idle":
					dur, err := parseDuration(d)
					if err != nil {
						return err
					}
					a.SessionIdle = dur
				default:
					return d.Errf("unknown session option %q (want ttl or idle)", d.Val())
				}
			}
		default:
			return d.Errf("unknown ssogate option %q", d.Val())
		}
	}
	if err := a.Validate(); err != nil {
		return d.Errf("%v", err)
	}
	return nil
}

func (a *App) parseStorage(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Errf("storage needs a backend: bolt [path] or redis <url>")
	}
	a.Storage = &StorageConfig{Backend: d.Val()}
	switch d.Val() {
	case "bolt":
		if d.NextArg() {
			a.Storage.Path = d.Val()
		}
	case "redis":
		if !d.NextArg() {
			return d.Errf("storage redis needs a URL, e.g. redis://127.0.0.1:6379/0")
		}
		a.Storage.URL = d.Val()
		if !strings.Contains(a.Storage.URL, "://") {
			return d.Errf("storage redis: %q is not a URL (want redis://, rediss://, redis+sentinel:// or redis+cluster://)", a.Storage.URL)
		}
	default:
		return d.Errf("unknown storage backend %q (want bolt or redis)", d.Val())
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "key_prefix":
			if a.Storage.Backend != "redis" || !d.AllArgs(&a.Storage.KeyPrefix) {
				return d.Errf("key_prefix <prefix> applies to redis storage only")
			}
		default:
			return d.Errf("unknown storage option %q", d.Val())
		}
	}
	return nil
}

// parseMail: mail <smtp-url> { from <mailbox> } | mail outbox [<dir>]
func (a *App) parseMail(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Errf("mail needs smtp://…, smtps://… or outbox")
	}
	a.Mail = &MailConfig{}
	if d.Val() == "outbox" {
		if d.NextArg() {
			a.Mail.Outbox = d.Val()
		}
	} else {
		a.Mail.URL = d.Val()
		if !strings.HasPrefix(a.Mail.URL, "smtp://") && !strings.HasPrefix(a.Mail.URL, "smtps://") && !strings.HasPrefix(a.Mail.URL, "{") {
			return d.Errf("mail: %q is not an smtp:// or smtps:// URL", a.Mail.URL)
		}
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "from":
			if !d.AllArgs(&a.Mail.From) {
				return d.ArgErr()
			}
		default:
			return d.Errf("unknown mail option %q (want from)", d.Val())
		}
	}
	if a.Mail.URL != "" && a.Mail.From == "" {
		return d.Errf(`mail needs a sender: mail %s { from "Acme SSO <sso@example.com>" }`, "<url>")
	}
	return nil
}

// parseSocial: social <name> { issuer <url>; client_id <id>; client_secret <secret>; hosted_domain <domain> }
func (a *App) parseSocial(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Errf("social needs a provider name, e.g. social google { … }")
	}
	p := SocialProvider{Name: d.Val()}
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var target *string
		switch d.Val() {
		case "issuer":
			target = &p.Issuer
		case "client_id":
			target = &p.ClientID
		case "client_secret":
			target = &p.ClientSecret
		case "hosted_domain":
			target = &p.HostedDomain
		default:
			return d.Errf("unknown social option %q (want issuer, client_id, client_secret or hosted_domain)", d.Val())
		}
		if !d.AllArgs(target) {
			return d.ArgErr()
		}
	}
	a.Social = append(a.Social, p)
	return nil
}

func parseDuration(d *caddyfile.Dispenser) (caddy.Duration, error) {
	if !d.NextArg() {
		return 0, d.ArgErr()
	}
	dur, err := durationValue(d, d.Val())
	if err != nil {
		return 0, err
	}
	if d.NextArg() {
		return 0, d.ArgErr()
	}
	return dur, nil
}

// durationValue parses one duration argument (positive, at most a year).
func durationValue(d *caddyfile.Dispenser, v string) (caddy.Duration, error) {
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return 0, d.Errf("bad duration %q: %v", v, err)
	}
	if dur <= 0 || dur > 366*24*time.Hour {
		return 0, d.Errf("duration %q out of range", v)
	}
	return caddy.Duration(dur), nil
}

func parseHandlerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses the site directive:
//
//	ssogate {
//		site_url <https://app.example.com>
//		base_path <path>
//		org <slug>
//	}
//
// `ssogate <site_url>` is a shorthand for a block with only site_url.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		h.SiteURL = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for d.NextBlock(0) {
		var target *string
		switch d.Val() {
		case "site_url":
			target = &h.SiteURL
		case "base_path":
			target = &h.BasePath
		case "org":
			target = &h.Org
		default:
			return d.Errf("unknown ssogate handler option %q (want site_url, base_path or org)", d.Val())
		}
		if !d.AllArgs(target) {
			return d.ArgErr()
		}
	}
	if err := h.Validate(); err != nil {
		return d.Errf("%v", err)
	}
	return nil
}

// Interface guards.
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)

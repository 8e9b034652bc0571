package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// StartTLS is how an smtp:// connection upgrades to TLS.
type StartTLS string

// StartTLS modes, as in the URL's ?starttls= parameter.
const (
	StartTLSRequired      StartTLS = "required"      // fail if the server offers no STARTTLS (default)
	StartTLSOpportunistic StartTLS = "opportunistic" // use STARTTLS when offered
	StartTLSNone          StartTLS = "none"          // never; for local relays without credentials
)

// DefaultTimeout bounds one SMTP send when SMTPConfig.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// ErrInvalidURL is wrapped by every ParseURL and SMTPConfig.Validate error.
var ErrInvalidURL = errors.New("invalid SMTP URL")

// ErrPermanent is wrapped by send errors that retrying will not fix: the
// server answered with a 5xx code. Queue does not retry them.
var ErrPermanent = errors.New("permanent failure")

// SMTPConfig says how to reach an SMTP server; ParseURL builds one.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string // AUTH only when set; only over TLS
	Password string

	ImplicitTLS bool     // smtps://: TLS from the first byte
	StartTLS    StartTLS // for smtp://; "" means StartTLSRequired

	// InsecureSkipVerify turns off certificate checks; Validate allows it
	// only for loopback hosts.
	InsecureSkipVerify bool
	// TLSConfig, when set, is the base TLS configuration (cloned), for
	// example with RootCAs that trust a test server. ServerName defaults to
	// Host.
	TLSConfig *tls.Config
	// Timeout bounds one send; zero means DefaultTimeout.
	Timeout time.Duration
}

// ParseURL parses an SMTP URL:
//
//	smtp://user:pass@host:587                 STARTTLS required (port defaults to 587)
//	smtp://user:pass@host:587?starttls=opportunistic
//	smtps://user:pass@host:465                implicit TLS (port defaults to 465)
//	smtp://host:25?starttls=none              no TLS, no AUTH: a local relay (port defaults to 25)
//	smtp://127.0.0.1:2525?insecure_skip_verify=true   loopback hosts only
//
// User name and password are percent-decoded. Errors never contain the password.
func ParseURL(raw string) (*SMTPConfig, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		shown := redactRaw(raw)
		var uerr *url.Error
		if errors.As(err, &uerr) && shown == raw {
			// No password in raw: the parser's detail is safe to show.
			return nil, fmt.Errorf("mail: %w %q: %w", ErrInvalidURL, shown, uerr.Err)
		}
		return nil, fmt.Errorf("mail: %w %q: malformed (percent-encode special characters in the user name and password)", ErrInvalidURL, shown)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("mail: %w %q: %s", ErrInvalidURL, u.Redacted(), fmt.Sprintf(format, args...))
	}
	cfg := &SMTPConfig{Host: u.Hostname()}
	switch u.Scheme {
	case "smtp":
	case "smtps":
		cfg.ImplicitTLS = true
	default:
		return nil, bad("scheme must be smtp or smtps")
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return nil, bad("unexpected path or fragment")
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	q := u.Query()
	for key, vals := range q {
		if len(vals) != 1 {
			return nil, bad("parameter %s given %d times", key, len(vals))
		}
		switch key {
		case "starttls":
			if cfg.ImplicitTLS {
				return nil, bad("starttls does not apply to smtps (TLS from the start)")
			}
			switch mode := StartTLS(strings.ToLower(vals[0])); mode {
			case StartTLSRequired, StartTLSOpportunistic, StartTLSNone:
				cfg.StartTLS = mode
			default:
				return nil, bad("starttls must be required, opportunistic or none, not %q", vals[0])
			}
		case "insecure_skip_verify":
			v, err := strconv.ParseBool(vals[0])
			if err != nil {
				return nil, bad("insecure_skip_verify must be true or false, not %q", vals[0])
			}
			cfg.InsecureSkipVerify = v
		default:
			return nil, bad("unknown parameter %q (known: starttls, insecure_skip_verify)", key)
		}
	}
	if cfg.StartTLS == "" && !cfg.ImplicitTLS {
		cfg.StartTLS = StartTLSRequired
	}
	switch p := u.Port(); {
	case p != "":
		cfg.Port, err = strconv.Atoi(p)
		if err != nil {
			return nil, bad("invalid port %q", p)
		}
	case cfg.ImplicitTLS:
		cfg.Port = 465
	case cfg.StartTLS == StartTLSNone:
		cfg.Port = 25
	default:
		cfg.Port = 587
	}
	if err := cfg.validate(); err != nil {
		return nil, bad("%s", err.Error())
	}
	return cfg, nil
}

// Validate checks a hand-built config; ParseURL already did.
func (c *SMTPConfig) Validate() error {
	if c == nil {
		return fmt.Errorf("mail: %w: no SMTP configuration", ErrInvalidURL)
	}
	if err := c.validate(); err != nil {
		return fmt.Errorf("mail: %w %q: %w", ErrInvalidURL, c.String(), err)
	}
	return nil
}

func (c *SMTPConfig) validate() error {
	switch {
	case c.Host == "":
		return errors.New("no host")
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("port %d out of range", c.Port)
	case c.Password != "" && c.Username == "":
		return errors.New("password without user name")
	case c.Username != "" && c.Password == "":
		return errors.New("user name without password")
	}
	switch c.StartTLS {
	case "", StartTLSRequired, StartTLSOpportunistic:
	case StartTLSNone:
		if !c.ImplicitTLS && c.Username != "" {
			return errors.New("credentials need TLS: drop starttls=none, or use smtps")
		}
	default:
		return fmt.Errorf("unknown starttls mode %q", c.StartTLS)
	}
	if (c.InsecureSkipVerify || (c.TLSConfig != nil && c.TLSConfig.InsecureSkipVerify)) && !isLoopback(c.Host) {
		return errors.New("insecure_skip_verify is only allowed for loopback hosts")
	}
	return nil
}

// String is the config as a URL with the password replaced by "xxxxx".
func (c *SMTPConfig) String() string {
	u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
	q := url.Values{}
	if c.ImplicitTLS {
		u.Scheme = "smtps"
	} else if c.StartTLS != "" {
		q.Set("starttls", string(c.StartTLS))
	}
	if c.InsecureSkipVerify {
		q.Set("insecure_skip_verify", "true")
	}
	u.RawQuery = q.Encode()
	if c.Username != "" {
		u.User = url.UserPassword(c.Username, "xxxxx")
	}
	return u.String()
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactRaw replaces the password in an unparsable URL with "xxxxx".
func redactRaw(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return raw
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// SMTPSender sends messages through an SMTP server, one connection per
// message. It is safe for concurrent use.
type SMTPSender struct {
	cfg  SMTPConfig
	from *mail.Address
}

// NewSMTP returns a sender for cfg with the given From mailbox, for example
// "Acme SSO <sso@example.com>".
func NewSMTP(cfg *SMTPConfig, from string) (*SMTPSender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	addr, err := parseFrom(from)
	if err != nil {
		return nil, err
	}
	s := &SMTPSender{cfg: *cfg, from: addr}
	if s.cfg.Timeout <= 0 {
		s.cfg.Timeout = DefaultTimeout
	}
	if _, err := s.client(s.cfg.Timeout); err != nil {
		return nil, err
	}
	return s, nil
}

// From is the sender mailbox.
func (s *SMTPSender) From() string { return s.from.String() }

// String describes the server without the password.
func (s *SMTPSender) String() string { return s.cfg.String() }

func (s *SMTPSender) client(timeout time.Duration) (*gomail.Client, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.cfg.TLSConfig != nil {
		tlsConf = s.cfg.TLSConfig.Clone()
	}
	if tlsConf.ServerName == "" {
		tlsConf.ServerName = s.cfg.Host
	}
	if tlsConf.MinVersion == 0 {
		tlsConf.MinVersion = tls.VersionTLS12
	}
	if s.cfg.InsecureSkipVerify {
		tlsConf.InsecureSkipVerify = true
	}
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port),
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(tlsConf),
	}
	switch {
	case s.cfg.ImplicitTLS:
		opts = append(opts, gomail.WithSSL())
	case s.cfg.StartTLS == StartTLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case s.cfg.StartTLS == StartTLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.cfg.Username != "" {
		// Auto-discovery picks the strongest mechanism the server offers and
		// never PLAIN or LOGIN on an unencrypted connection.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	c, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mail: SMTP client for %s: %w", s.cfg.String(), err)
	}
	return c, nil
}

// Send delivers m, giving up after the configured timeout or when ctx ends.
// When ctx ends mid-transaction Send returns at once; the abandoned
// transaction then ends within one network step (and may still deliver).
func (s *SMTPSender) Send(ctx context.Context, m *Message) error {
	if err := m.validate(); err != nil {
		return err
	}
	msg, err := build(s.from, m, time.Now())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	// go-mail bounds each network step by its timeout; the remaining time
	// keeps a stuck server from outliving ctx by more than one step.
	c, err := s.client(max(time.Until(deadline), time.Millisecond))
	if err != nil {
		return err
	}
	where := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	done := make(chan error, 1)
	go func() { done <- c.DialAndSendWithContext(ctx, msg) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return fmt.Errorf("mail: send via %s: %w", where, context.Cause(ctx))
	}
	if err != nil {
		var se *gomail.SendError
		if errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500 {
			return fmt.Errorf("mail: send via %s: %w: %w", where, ErrPermanent, err)
		}
		return fmt.Errorf("mail: send via %s: %w", where, err)
	}
	return nil
}

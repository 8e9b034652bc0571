package redis

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// URL parsing. Error texts must never contain credentials, and a malformed
// URL can put parts of a password anywhere (an unescaped "/" or "@" in it
// shifts every boundary), so errors name the problem and its position but
// echo nothing from the URL except the scheme and option names.

const schemesHint = "redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://"

// newClient builds the go-redis client for rawURL and reports whether it is
// a Cluster client.
func newClient(rawURL string) (goredis.UniversalClient, bool, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, false, fmt.Errorf("redis: store URL must start with %s", schemesHint)
	}
	scheme = strings.ToLower(scheme)
	switch scheme {
	case "redis", "rediss":
		o, err := parseStandalone(rawURL)
		if err != nil {
			return nil, false, err
		}
		return goredis.NewClient(o), false, nil
	case "redis+sentinel", "rediss+sentinel":
		o, err := parseSentinel(strings.TrimSuffix(scheme, "+sentinel"), rest)
		if err != nil {
			return nil, false, err
		}
		return goredis.NewFailoverClient(o), false, nil
	case "redis+cluster", "rediss+cluster":
		o, err := parseCluster(strings.TrimSuffix(scheme, "+cluster"), rest)
		if err != nil {
			return nil, false, err
		}
		return goredis.NewClusterClient(o), true, nil
	default:
		if !validScheme(scheme) {
			return nil, false, fmt.Errorf("redis: store URL must start with %s", schemesHint)
		}
		return nil, false, fmt.Errorf("redis: unsupported store URL scheme %q; use %s", scheme, schemesHint)
	}
}

func validScheme(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return false
		}
	}
	return s != ""
}

func parseStandalone(rawURL string) (*goredis.Options, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, urlParseErr(err)
	}
	if u.Fragment != "" || u.Opaque != "" {
		return nil, errors.New("redis: store URL must look like redis://[user:pass@]host:port[/db]")
	}
	db, err := parseDB(u.Path)
	if err != nil {
		return nil, err
	}
	user := u.User
	u.User = nil // keep credentials away from go-redis and its error texts
	u.Path = "/" + strconv.Itoa(db)
	o, err := goredis.ParseURL(u.String())
	if err != nil {
		return nil, scrub(fmt.Errorf("redis: store URL: %w", err), user)
	}
	if user != nil {
		o.Username = user.Username()
		o.Password, _ = user.Password()
	}
	return o, nil
}

func parseSentinel(scheme, rest string) (*goredis.FailoverOptions, error) {
	p, err := splitMultiHost(rest, 26379)
	if err != nil {
		return nil, err
	}
	segs := strings.Split(strings.Trim(p.path, "/"), "/")
	if segs[0] == "" || len(segs) > 2 {
		return nil, errors.New("redis: sentinel URL must look like redis+sentinel://[user:pass@]host:port,…/master-name[/db]")
	}
	master, err := url.PathUnescape(segs[0])
	if err != nil || master == "" {
		return nil, errors.New("redis: sentinel URL: invalid master name")
	}
	db := 0
	if len(segs) == 2 {
		if db, err = parseDB("/" + segs[1]); err != nil {
			return nil, err
		}
	}
	// Sentinel's own credentials, if it has any, come from the query; the
	// URL's userinfo is for the Redis master and replicas.
	sentUser, sentPass := p.query.Get("sentinel_username"), p.query.Get("sentinel_password")
	p.query.Del("sentinel_username")
	p.query.Del("sentinel_password")
	p.query.Set("master_name", master)
	for _, h := range p.hosts[1:] {
		p.query.Add("addr", h)
	}
	u := url.URL{Scheme: scheme, Host: p.hosts[0], Path: "/" + strconv.Itoa(db), RawQuery: p.query.Encode()}
	o, err := goredis.ParseFailoverURL(u.String())
	if err != nil {
		return nil, scrub(fmt.Errorf("redis: sentinel URL: %w", err), p.user, sentPass)
	}
	if p.user != nil {
		o.Username = p.user.Username()
		o.Password, _ = p.user.Password()
	}
	o.SentinelUsername, o.SentinelPassword = sentUser, sentPass
	if o.TLSConfig != nil {
		o.TLSConfig.ServerName = "" // verify each host under its own name
	}
	return o, nil
}

func parseCluster(scheme, rest string) (*goredis.ClusterOptions, error) {
	p, err := splitMultiHost(rest, 6379)
	if err != nil {
		return nil, err
	}
	if strings.Trim(p.path, "/") != "" {
		return nil, errors.New("redis: cluster URL takes no path or database (Redis Cluster has only db 0): use redis+cluster://[user:pass@]host:port,…")
	}
	for _, h := range p.hosts[1:] {
		p.query.Add("addr", h)
	}
	u := url.URL{Scheme: scheme, Host: p.hosts[0], RawQuery: p.query.Encode()}
	o, err := goredis.ParseClusterURL(u.String())
	if err != nil {
		return nil, scrub(fmt.Errorf("redis: cluster URL: %w", err), p.user)
	}
	if p.user != nil {
		o.Username = p.user.Username()
		o.Password, _ = p.user.Password()
	}
	if o.TLSConfig != nil {
		o.TLSConfig.ServerName = ""
	}
	return o, nil
}

type multiHost struct {
	user  *url.Userinfo
	hosts []string // "host:port"
	path  string
	query url.Values
}

// splitMultiHost parses "[user:pass@]h1[:p1],h2[:p2][/path][?query]", the
// part after "scheme://" that net/url cannot parse (several hosts).
func splitMultiHost(rest string, defaultPort int) (*multiHost, error) {
	if strings.Contains(rest, "#") {
		return nil, errors.New("redis: store URL must not contain a '#' fragment (percent-encode '#' in passwords as %23)")
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	p := &multiHost{path: path}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		u, err := url.Parse("redis://" + authority[:i] + "@localhost")
		if err != nil || u.User == nil {
			return nil, errors.New("redis: store URL has invalid credentials (percent-encode special characters such as '@', '/', ':' and '%' in the password)")
		}
		p.user = u.User
		authority = authority[i+1:]
	}
	if authority == "" {
		return nil, errors.New("redis: store URL has no host")
	}
	list := strings.Split(authority, ",")
	for n, h := range list {
		hp, err := hostPort(h, defaultPort)
		if err != nil {
			return nil, fmt.Errorf("redis: store URL: host %d of %d: %v", n+1, len(list), err)
		}
		p.hosts = append(p.hosts, hp)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, errors.New("redis: store URL has an invalid query string")
	}
	p.query = q
	return p, nil
}

func hostPort(h string, defaultPort int) (string, error) {
	if h == "" {
		return "", errors.New("empty host (stray comma?)")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port (or an IPv6 literal in brackets without one).
		host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), strconv.Itoa(defaultPort)
		if strings.ContainsAny(host, "[]") || (strings.Contains(host, ":") && !strings.HasPrefix(h, "[")) {
			return "", errors.New("malformed host:port (write IPv6 addresses as [addr]:port)")
		}
	}
	if host == "" {
		return "", errors.New("empty host name")
	}
	if strings.ContainsAny(host, " /?#@%\t\r\n") {
		return "", errors.New("invalid character in host name")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", errors.New("port must be a number from 1 to 65535")
	}
	return net.JoinHostPort(host, port), nil
}

// parseDB accepts "", "/" or "/<n>".
func parseDB(path string) (int, error) {
	s := strings.TrimPrefix(path, "/")
	if s == "" {
		return 0, nil
	}
	db, err := strconv.Atoi(s)
	if err != nil || db < 0 {
		return 0, errors.New("redis: store URL path must be a database number such as /0")
	}
	return db, nil
}

// urlParseErr turns a net/url error into text that echoes nothing from the
// URL (its messages quote the offending part, which may be a password).
func urlParseErr(err error) error {
	var ee url.EscapeError
	var he url.InvalidHostError
	msg := err.Error()
	switch {
	case errors.As(err, &ee):
		return errors.New("redis: store URL has an invalid %-escape")
	case errors.As(err, &he):
		return errors.New("redis: store URL has an invalid character in the host")
	case strings.Contains(msg, "invalid port"):
		return errors.New("redis: store URL has an invalid port (percent-encode '/', '@', ':' and '?' in passwords)")
	case strings.Contains(msg, "userinfo"):
		return errors.New("redis: store URL has invalid credentials (percent-encode special characters in the password)")
	case strings.Contains(msg, "control character"):
		return errors.New("redis: store URL contains a control character")
	default:
		return errors.New("redis: store URL is malformed; expected " + schemesHint + " followed by [user:pass@]host:port")
	}
}

// scrub removes any secret that ended up in err's text; a last line of
// defence, since go-redis never sees the userinfo.
func scrub(err error, user *url.Userinfo, extra ...string) error {
	secrets := extra
	if user != nil {
		if p, ok := user.Password(); ok {
			secrets = append(secrets, p, url.QueryEscape(p), url.PathEscape(p))
		}
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
			changed = true
		}
	}
	if changed {
		return errors.New(msg)
	}
	return err
}

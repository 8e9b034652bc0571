package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/net/html"

	"github.com/ssogate/ssogate/internal/redistest"
)

// TestWalkthrough runs the demo and walks its printed walkthrough: every
// curl line as printed (parsed back and sent with an HTTP client), every
// browser action with a cookie-jar client that fills in the sign-in
// forms of ssogate and of the IdPs. Once with bolt and the SAML IdP, once
// with Redis and the OIDC provider. The runs share Caddy, which is
// process-wide, so they run one after the other.
func TestWalkthrough(t *testing.T) {
	// Keep Caddy away from the real user's folders.
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Run("bolt, SAML", func(t *testing.T) { walk(t, "saml", "") })
	t.Run("redis, OIDC", func(t *testing.T) { walk(t, "oidc", redistest.Start(t).URL()) })
}

func walk(t *testing.T, variant, redisURL string) {
	start := time.Now()
	d, err := Start(context.Background(), Config{Redis: redisURL}) // all ports free ones
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = d.Close()
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(d.logFile); err == nil {
				t.Logf("gateway log:\n%s", tail(string(b), 60))
			}
		}
	})
	t.Logf("demo started in %v", time.Since(start))
	var printed bytes.Buffer
	Print(&printed, d.Env)
	out := printed.String()

	// The shell variables the printed commands use: KEY as printed.
	m := regexp.MustCompile(`\n  KEY=(\S+)\n`).FindStringSubmatch(out)
	if m == nil || m[1] != d.Env.APIKey {
		t.Fatalf("the printed walkthrough does not set KEY to the API key:\n%s", out)
	}
	w := &walker{t: t, env: d.Env, vars: map[string]string{"KEY": m[1]}, browsers: map[string]*browser{}}
	for i, step := range Steps(d.Env) {
		if !strings.Contains(out, fmt.Sprintf("\n%d. %s\n", i+1, step.Title)) {
			t.Fatalf("step %q is not printed", step.Title)
		}
		for _, a := range step.Actions {
			if a.Variant != "" && a.Variant != variant {
				continue
			}
			switch {
			case a.Request != nil:
				line := a.Request.Curl()
				if !strings.Contains(out, "   $ "+line+"\n") {
					t.Fatalf("step %d: the command is not printed: %s", i+1, line)
				}
				w.curl(fmt.Sprintf("step %d (%s)", i+1, step.Title), line, a.Request)
			case a.Browser != nil:
				if !strings.Contains(out, "   "+a.Browser.Describe(d.Env)+"\n") {
					t.Fatalf("step %d: the browser action is not printed: %s", i+1, a.Browser.Describe(d.Env))
				}
				w.browse(fmt.Sprintf("step %d (%s)", i+1, step.Title), a.Browser)
			}
		}
	}

	// The demo's other parts.
	w.checkConsole(out)
	w.checkDirectApp()
	w.checkTools()

	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	if _, err := os.Stat(d.Env.Dir); !os.IsNotExist(err) {
		t.Fatalf("the demo's folder is still there: %v", err)
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(d.Env.Gateway, "http://"), time.Second); err == nil {
		c.Close()
		t.Fatal("the gateway still listens after Close")
	}
	if redisURL != "" {
		opts, _ := goredis.ParseURL(redisURL)
		c := goredis.NewClient(opts)
		defer c.Close()
		keys, err := c.Keys(context.Background(), "*").Result()
		if err != nil || len(keys) != 0 {
			t.Fatalf("Redis keys left after Close: %v %v", keys, err)
		}
	}
	t.Logf("walked in %v", time.Since(start))
}

type walker struct {
	t        *testing.T
	env      Env
	vars     map[string]string
	browsers map[string]*browser
}

var captureRe = regexp.MustCompile(`^([A-Z_]+)=\$\((curl .+) \| sed -n 's/\.\*"([a-z_]+)":"\\\(\[\^"\]\*\\\)"\.\*/\\1/p'\); echo "([A-Z_]+)=\$([A-Z_]+)"$`)

// curl runs a printed curl line the way the shell and curl would, and
// checks the answer against the request's expectations.
func (w *walker) curl(where, line string, want *Request) {
	t := w.t
	t.Helper()
	saveAs, field := "", ""
	if m := captureRe.FindStringSubmatch(line); m != nil {
		if m[1] != m[4] || m[1] != m[5] {
			t.Fatalf("%s: odd capture: %s", where, line)
		}
		saveAs, field, line = m[1], m[3], m[2]
	}
	args, err := shellWords(line, w.vars)
	if err != nil || len(args) == 0 || args[0] != "curl" {
		t.Fatalf("%s: cannot parse %q: %v", where, line, err)
	}
	method, target, discard := "", "", false
	header := http.Header{}
	var data []string
	for i := 1; i < len(args); i++ {
		next := func() string {
			i++
			if i >= len(args) {
				t.Fatalf("%s: %s needs a value: %s", where, args[i-1], line)
			}
			return args[i]
		}
		switch a := args[i]; a {
		case "-s":
		case "-X":
			method = next()
		case "-H":
			k, v, ok := strings.Cut(next(), ":")
			if !ok {
				t.Fatalf("%s: bad header in %s", where, line)
			}
			header.Add(k, strings.TrimSpace(v))
		case "-d":
			data = append(data, next())
		case "-o":
			discard = next() == "/dev/null"
		case "-w":
			next()
		default:
			if strings.HasPrefix(a, "-") || target != "" {
				t.Fatalf("%s: unexpected curl argument %q in %s", where, a, line)
			}
			target = a
		}
	}
	var body io.Reader
	if data != nil {
		body = strings.NewReader(strings.Join(data, "&"))
		if header.Get("Content-Type") == "" {
			header.Set("Content-Type", "application/x-www-form-urlencoded") // as curl -d
		}
	}
	if method == "" {
		method = "GET"
		if data != nil {
			method = "POST"
		}
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	req.Header = header
	resp, err := noRedirects(nil).Do(req)
	if err != nil {
		t.Fatalf("%s: %s: %v", where, line, err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want.Want {
		t.Fatalf("%s: %s\nanswered %d, want %d: %s", where, line, resp.StatusCode, want.Want, raw)
	}
	if discard && len(bytes.TrimSpace(raw)) != 0 {
		t.Fatalf("%s: the answer printed nothing, but there was a body: %s", where, raw)
	}
	for _, s := range want.WantBody {
		if !bytes.Contains(raw, []byte(s)) {
			t.Fatalf("%s: %s\nthe answer lacks %s: %s", where, line, s, raw)
		}
	}
	if saveAs != "" {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		v, _ := m[field].(string)
		if v == "" || strings.ContainsAny(v, `"\`) {
			t.Fatalf("%s: no usable %q in the answer: %s", where, field, raw)
		}
		w.vars[saveAs] = v
	}
}

// shellWords splits a command line as a POSIX shell would, for the
// quoting the walkthrough uses: '…', "…" with $VAR, bare words with $VAR.
func shellWords(s string, vars map[string]string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	expand := func(i int) (int, error) { // s[i] == '$'
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j == i+1 {
			return 0, fmt.Errorf("a lone $ at %d", i)
		}
		v, ok := vars[s[i+1:j]]
		if !ok {
			return 0, fmt.Errorf("$%s is not set", s[i+1:j])
		}
		cur.WriteString(v)
		return j, nil
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unclosed ' at %d", i)
			}
			cur.WriteString(s[i+1 : i+1+j])
			inWord, i = true, i+j+2
		case c == '"':
			inWord = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				switch {
				case s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`+"`", s[i+1]) >= 0:
					cur.WriteByte(s[i+1])
					i++
				case s[i] == '$':
					j, err := expand(i)
					if err != nil {
						return nil, err
					}
					i = j - 1
				case s[i] == '`':
					return nil, fmt.Errorf("backquote at %d", i)
				default:
					cur.WriteByte(s[i])
				}
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unclosed \"")
			}
			i++
		case c == '$':
			j, err := expand(i)
			if err != nil {
				return nil, err
			}
			inWord, i = true, j
		case strings.IndexByte("|&;<>()`\\*?[#~{}!", c) >= 0:
			return nil, fmt.Errorf("shell metacharacter %q at %d", c, i)
		default:
			cur.WriteByte(c)
			inWord = true
			i++
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// browser is one person's browser window: a cookie jar, no automatic
// redirects (each hop is checked).
type browser struct {
	t *testing.T
	c *http.Client
}

func noRedirects(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (w *walker) browser(who string) *browser {
	b := w.browsers[who]
	if b == nil {
		jar, _ := cookiejar.New(nil)
		b = &browser{t: w.t, c: noRedirects(jar)}
		w.browsers[who] = b
	}
	return b
}

func (b *browser) do(method, u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, u, err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(raw)
}

func (w *walker) browse(where string, a *Browse) {
	t := w.t
	t.Helper()
	b := w.browser(a.Who)
	gw := w.env.Gateway
	switch a.Kind {
	case SignOut:
		if resp, _ := b.do("GET", gw+"/.ssogate/logout", nil); resp.StatusCode >= 400 {
			t.Fatalf("%s: logout: %d", where, resp.StatusCode)
		}
		w.wantSignedOut(where, b)
	case Reload:
		if a.Want == nil {
			w.wantSignedOut(where, b)
			return
		}
		w.wantIdentity(where, b, a.Want)
	case SignIn:
		if refused := w.signIn(where, b, a.Who, a.Via); refused {
			t.Fatalf("%s: the IdP refused %s", where, a.Who)
		}
		if a.Want != nil {
			w.wantIdentity(where, b, a.Want)
		}
	case SignInRefused:
		if refused := w.signIn(where, b, a.Who, "sso"); !refused {
			t.Fatalf("%s: %s signed in, but should have been refused", where, a.Who)
		}
		w.wantSignedOut(where, b)
	}
}

func (w *walker) wantSignedOut(where string, b *browser) {
	w.t.Helper()
	resp, _ := b.do("GET", w.env.Gateway+"/", nil)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/.ssogate/login") {
		w.t.Fatalf("%s: want the sign-in page, got %d (Location %q)", where, resp.StatusCode, resp.Header.Get("Location"))
	}
}

// wantIdentity checks what the demo app shows, through the gateway.
func (w *walker) wantIdentity(where string, b *browser, want *Identity) {
	w.t.Helper()
	resp, page := b.do("GET", w.env.Gateway+"/", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Signed in as <strong>"+want.Email+"</strong>") {
		w.t.Fatalf("%s: the app page (%d) does not show %s:\n%s", where, resp.StatusCode, want.Email, page)
	}
	req, _ := http.NewRequest("GET", w.env.Gateway+"/whoami", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := b.c.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	var who WhoAmI
	err = json.NewDecoder(resp.Body).Decode(&who)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		w.t.Fatalf("%s: /whoami: %d %v", where, resp.StatusCode, err)
	}
	if !who.JWTVerified || who.Email != want.Email || who.Orgs != want.Orgs ||
		who.Headers["X-Forwarded-Email"] != want.Email || who.Headers["X-Ssogate-Orgs"] != want.Orgs {
		w.t.Fatalf("%s: the app shows %+v, want %+v", where, who, *want)
	}
	if who.Claims["aud"] != w.env.Gateway && fmt.Sprint(who.Claims["aud"]) != "["+w.env.Gateway+"]" {
		w.t.Fatalf("%s: JWT audience %v", where, who.Claims["aud"])
	}
}

// signIn plays a person signing in: the app sends them to the sign-in
// page, they enter their email, then follow the pages: SSO offer, the
// IdP's sign-in form, the IdP's auto-posting form, or (via "link") the
// mail outbox and the sign-in link's button. It reports whether the IdP
// refused the password.
func (w *walker) signIn(where string, b *browser, email, via string) (refused bool) {
	t := w.t
	t.Helper()
	resp, _ := b.do("GET", w.env.Gateway+"/", nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("%s: opening the app before signing in: %d", where, resp.StatusCode)
	}
	cur, _ := url.Parse(w.env.Gateway + "/")
	method, target, form := "GET", resp.Header.Get("Location"), url.Values(nil)
	passwordTries := 0
	for hop := 0; hop < 20; hop++ {
		next, err := cur.Parse(target)
		if err != nil {
			t.Fatalf("%s: bad URL %q: %v", where, target, err)
		}
		cur = next
		resp, page := b.do(method, cur.String(), form)
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			method, target, form = "GET", resp.Header.Get("Location"), nil
			continue
		case resp.StatusCode != http.StatusOK:
			t.Fatalf("%s: %s %s answered %d:\n%s", where, method, cur, resp.StatusCode, page)
		}
		if cur.Host == strings.TrimPrefix(w.env.Gateway, "http://") && !strings.HasPrefix(cur.Path, "/.ssogate/") {
			return false // the app
		}
		action, fields, ok := firstForm(page)
		switch {
		case !ok && via == "link" && strings.Contains(page, "Check your email"):
			method, target, form = "GET", w.newestLink(where, email), nil
			continue
		case !ok:
			t.Fatalf("%s: stuck at %s:\n%s", where, cur, page)
		case fields.Has("email") && strings.HasPrefix(cur.Path, "/.ssogate/login") && fields.Get("method") == "":
			fields.Set("email", email) // ssogate's sign-in page
		case fields.Has("password"):
			if passwordTries++; passwordTries > 1 {
				return true // the IdP showed its form again: refused
			}
			for _, k := range []string{"user", "username"} {
				if fields.Has(k) {
					fields.Set(k, email)
				}
			}
			fields.Set("password", Password)
		}
		method, target, form = "POST", action, fields
		if action == "" {
			target = cur.String()
		}
	}
	t.Fatalf("%s: too many hops signing in %s", where, email)
	return false
}

// newestLink waits for the newest outbox message to email and returns its
// sign-in link.
func (w *walker) newestLink(where, email string) string {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(w.env.Tools + "/mail?format=json")
		if err != nil {
			w.t.Fatal(err)
		}
		var list struct {
			Messages []outboxEntry `json:"messages"`
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err != nil {
			w.t.Fatalf("%s: outbox: %v", where, err)
		}
		for _, m := range list.Messages {
			if len(m.To) == 1 && strings.Contains(m.To[0], email) {
				for _, l := range m.Links {
					if strings.HasPrefix(l, w.env.Gateway+"/.ssogate/magic/") {
						return l
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.t.Fatalf("%s: no sign-in link for %s in the outbox", where, email)
	return ""
}

// firstForm returns the action and the named inputs of the first form of
// an HTML page.
func firstForm(page string) (action string, fields url.Values, ok bool) {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return "", nil, false
	}
	fields = url.Values{}
	var form *html.Node
	var find func(n *html.Node)
	find = func(n *html.Node) {
		if form != nil {
			return
		}
		if n.Type == html.ElementNode && n.Data == "form" {
			form = n
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			find(c)
		}
	}
	find(doc)
	if form == nil {
		return "", nil, false
	}
	var inputs func(n *html.Node)
	inputs = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") != "" {
			fields.Set(attr(n, "name"), attr(n, "value"))
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			inputs(c)
		}
	}
	inputs(form)
	return attr(form, "action"), fields, true
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// checkDirectApp: without ssogate in front, the app verifies nothing,
// whatever headers a client sends.
// checkConsole: the printed console URL shows the owner the state the
// walkthrough made (the verified domain, the tested connection).
func (w *walker) checkConsole(out string) {
	t := w.t
	u := w.env.Gateway + "/.ssogate/settings/identity"
	if !strings.Contains(out, "\n  "+u+"\n") {
		t.Fatalf("the console URL is not printed")
	}
	b := w.browsers[Owner]
	if b == nil {
		t.Fatalf("no browser of %s after the walkthrough", Owner)
	}
	resp, page := b.do("GET", u, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-domain="`+Domain+`"`) || !strings.Contains(page, ">Verified<") ||
		!strings.Contains(page, "✓ Tested") {
		t.Fatalf("the console (%d) does not show the verified domain and the tested connection:\n%.3000s", resp.StatusCode, page)
	}
}

func (w *walker) checkDirectApp() {
	req, _ := http.NewRequest("GET", w.env.App+"/whoami", nil)
	req.Header.Set("X-Forwarded-Email", "mallory@acme.test")
	req.Header.Set("X-Ssogate-Jwt-Assertion", "eyJhbGciOiJub25lIn0.eyJlbWFpbCI6Im1hbGxvcnlAYWNtZS50ZXN0In0.")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var who WhoAmI
	if err := json.NewDecoder(resp.Body).Decode(&who); err != nil || who.JWTVerified || who.Email != "" || who.JWTError == "" {
		w.t.Fatalf("the app, reached directly with a forged JWT: %+v %v", who, err)
	}
}

// checkTools: the tools pages show the walkthrough, the DNS record and the
// mail.
func (w *walker) checkTools() {
	get := func(path string, wants ...string) {
		resp, err := http.Get(w.env.Tools + path)
		if err != nil {
			w.t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, s := range wants {
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), s) {
				w.t.Fatalf("tools %s: %d, lacks %q:\n%s", path, resp.StatusCode, s, raw)
			}
		}
	}
	get("/", "KEY="+w.env.APIKey, "olivia@acme.test", "Capture acme.test")
	get("/dns", "_ssogate-challenge.acme.test.", "ssogate-domain-verification=")
	get("/mail", "/mail/")
	// A cross-site form post to the tools is refused.
	req, _ := http.NewRequest("POST", w.env.Tools+"/dns", strings.NewReader("name=x.acme.test&value=y"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		w.t.Fatalf("cross-site POST /dns: %d", resp.StatusCode)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// A busy port fails with a message naming the flag, before anything starts.
func TestBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		cfg  Config
		flag string
	}{
		{Config{AppPort: port}, "--app-port"},
		{Config{GatewayPort: port}, "--gateway-port"},
		{Config{SAMLPort: port}, "--saml-port"},
		{Config{AdminPort: port}, "--admin-port"},
		{Config{DNSPort: port}, "--dns-port"},
	} {
		_, err := Start(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.flag) || !strings.Contains(err.Error(), fmt.Sprint(port)) {
			t.Fatalf("busy %s: %v", tc.flag, err)
		}
	}
}

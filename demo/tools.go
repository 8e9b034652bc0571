package demo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ssogate/ssogate/internal/idp/oidcidp"
	"github.com/ssogate/ssogate/internal/idp/samlidp"
	"github.com/ssogate/ssogate/internal/txtdns"
	"github.com/ssogate/ssogate/mail"
)

// tools is the demo's own little web server: the DNS server's record
// table, the mail outbox, and removing people from the IdPs.
type tools struct {
	env    *Env
	dns    *txtdns.Server
	outbox *mail.OutboxSender
	saml   *samlidp.IdP
	oidc   *oidcidp.OP
	client *http.Client
	logger *zap.Logger
}

func (t *tools) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", t.index)
	mux.HandleFunc("GET /dns", t.listDNS)
	mux.HandleFunc("POST /dns", t.publishDNS)
	mux.HandleFunc("GET /mail", t.listMail)
	mux.HandleFunc("GET /mail/{name}", t.readMail)
	mux.HandleFunc("DELETE /people/{email}", t.removePerson)
	// Everything that changes something is for this page or scripts,
	// never for another site open in the same browser.
	return http.NewCrossOriginProtection().Handler(mux)
}

func (t *tools) index(w http.ResponseWriter, r *http.Request) {
	var walk bytes.Buffer
	Print(&walk, *t.env)
	t.render(w, http.StatusOK, "index", map[string]any{"Env": t.env, "People": People, "Walkthrough": walk.String()})
}

func (t *tools) listDNS(w http.ResponseWriter, r *http.Request) {
	t.render(w, http.StatusOK, "dns", map[string]any{"Env": t.env, "Records": t.dns.Records(), "Domain": Domain})
}

// publishDNS puts a TXT record in the DNS server's table: name and value
// as given, or, for domain=<d>, the challenge ssogate is waiting for on d
// (read from the admin API with the demo's API key).
func (t *tools) publishDNS(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	name, value := strings.TrimSpace(r.PostForm.Get("name")), strings.TrimSpace(r.PostForm.Get("value"))
	if d := strings.TrimSpace(r.PostForm.Get("domain")); d != "" {
		var err error
		if name, value, err = t.challenge(r, d); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	if name == "" || value == "" || len(name) > 253 || len(value) > 1024 || strings.ContainsAny(name, " \t\r\n") {
		http.Error(w, "send domain=<a domain added to ssogate>, or name=<record name> and value=<TXT value>", http.StatusBadRequest)
		return
	}
	t.dns.SetTXT(name, value)
	t.logger.Info("TXT record published", zap.String("name", name), zap.String("value", value))
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Redirect(w, r, "/dns", http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "published %s TXT %q\n", name, value)
}

// challenge asks the gateway which TXT record domain d waits for.
func (t *tools) challenge(r *http.Request, d string) (name, value string, err error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, t.env.api("/domains/"+url.PathEscape(d)), nil)
	if err != nil {
		return "", "", fmt.Errorf("domain %q: %w", d, err)
	}
	req.Header.Set("Authorization", "Bearer "+t.env.APIKey)
	resp, err := t.client.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("asking the gateway about %s: %w", d, err)
	}
	defer resp.Body.Close()
	var out struct {
		TXTName  string `json:"txt_name"`
		TXTValue string `json:"txt_value"`
		Error    struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return "", "", fmt.Errorf("asking the gateway about %s: %s: %w", d, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("%s is not a domain %s added (%s): add it first, or send name= and value=", d, ParentName, out.Error.Message)
	}
	return out.TXTName, out.TXTValue, nil
}

// outboxEntry is one message as /mail?format=json lists it.
type outboxEntry struct {
	Name    string    `json:"name"`
	Time    time.Time `json:"time"`
	To      []string  `json:"to"`
	Subject string    `json:"subject"`
	Links   []string  `json:"links"`
}

var linkRe = regexp.MustCompile(`https?://[^\s<>"]+`)

func (t *tools) listMail(w http.ResponseWriter, r *http.Request) {
	list, err := t.outbox.List()
	if err != nil {
		t.logger.Error("reading the outbox", zap.Error(err))
		http.Error(w, "the outbox could not be read", http.StatusInternalServerError)
		return
	}
	entries := make([]outboxEntry, 0, len(list))
	for _, e := range list {
		oe := outboxEntry{Name: e.Name, Time: e.Time, To: e.To, Subject: e.Subject, Links: []string{}}
		if m, err := t.outbox.Read(e.Name); err == nil {
			oe.Links = append(oe.Links, linkRe.FindAllString(m.Text, -1)...)
		}
		entries = append(entries, oe)
	}
	if r.URL.Query().Get("format") == "json" {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]any{"messages": entries})
		return
	}
	t.render(w, http.StatusOK, "mail", map[string]any{"Env": t.env, "Messages": entries, "Dir": t.outbox.Dir})
}

func (t *tools) readMail(w http.ResponseWriter, r *http.Request) {
	m, err := t.outbox.Read(r.PathValue("name"))
	if err != nil {
		if !errors.Is(err, mail.ErrBadOutboxName) && !errors.Is(err, fs.ErrNotExist) {
			t.logger.Error("reading an outbox message", zap.Error(err))
		}
		http.Error(w, "no such message", http.StatusNotFound)
		return
	}
	t.render(w, http.StatusOK, "message", map[string]any{"Env": t.env, "Msg": m, "Links": linkRe.FindAllString(m.Text, -1)})
}

// removePerson takes a person away from both IdPs (as an IdP admin would
// revoke access): they can no longer sign in there.
func (t *tools) removePerson(w http.ResponseWriter, r *http.Request) {
	email := strings.ToLower(r.PathValue("email"))
	samlErr := t.saml.RemoveUser(email)
	inOIDC := t.oidc.RemoveUser(email)
	if samlErr != nil && !inOIDC {
		http.Error(w, "no such person at the IdPs", http.StatusNotFound)
		return
	}
	t.logger.Info("person removed from the demo IdPs", zap.String("email", email))
	w.WriteHeader(http.StatusNoContent)
}

func (t *tools) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := toolPages.ExecuteTemplate(&buf, name, data); err != nil {
		t.logger.Error("rendering a demo page", zap.String("page", name), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

var toolPages = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ssogate demo tools</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
pre{background:#f4f4f4;padding:.8rem;overflow:auto;white-space:pre-wrap}nav a{margin-right:1rem}</style></head>
<body><nav><a href="/">Demo tools</a><a href="/dns">DNS records</a><a href="/mail">Mail outbox</a>
<a href="{{.Env.Gateway}}/">The app, through ssogate</a></nav>{{end}}
{{define "foot"}}</body></html>{{end}}

{{define "index"}}{{template "head" .}}<h1>ssogate demo</h1>
<table>
<tr><th>Gateway (the demo app behind ssogate)</th><td><a href="{{.Env.Gateway}}/">{{.Env.Gateway}}/</a></td></tr>
<tr><th>Demo app, directly</th><td><a href="{{.Env.App}}/">{{.Env.App}}/</a></td></tr>
<tr><th>SAML IdP</th><td><a href="{{.Env.SAML}}/metadata">{{.Env.SAML}}/metadata</a></td></tr>
<tr><th>OIDC provider</th><td><a href="{{.Env.OIDC}}/.well-known/openid-configuration">{{.Env.OIDC}}</a></td></tr>
<tr><th>DNS server</th><td>{{.Env.DNS}} (UDP and TCP) — <a href="/dns">records</a></td></tr>
<tr><th>Mail outbox</th><td><a href="/mail">messages</a></td></tr>
<tr><th>Caddy admin endpoint</th><td>{{.Env.Admin}}</td></tr>
<tr><th>Store</th><td>{{.Env.Store}}</td></tr>
</table>
<h2>People at both IdPs</h2>
<table>{{range .People}}<tr><td>{{.Email}}</td><td>{{.GivenName}} {{.FamilyName}}</td><td>{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{end}}</td></tr>{{end}}</table>
<h2>Walkthrough</h2><pre>{{.Walkthrough}}</pre>
{{template "foot" .}}{{end}}

{{define "dns"}}{{template "head" .}}<h1>DNS records</h1>
<p>The demo DNS server at {{.Env.DNS}} answers TXT queries from this table; ssogate's domain check asks it.</p>
<table><tr><th>Name</th><th>TXT value</th></tr>
{{range .Records}}<tr><td><code>{{.Name}}</code></td><td><code>{{.Value}}</code></td></tr>{{else}}<tr><td colspan="2">No records yet.</td></tr>{{end}}</table>
<h2>Publish the challenge of a domain</h2>
<form method="post" action="/dns"><label>Domain <input name="domain" value="{{.Domain}}"></label> <button type="submit">Publish</button></form>
<h2>Publish any TXT record</h2>
<form method="post" action="/dns"><label>Name <input name="name" size="40"></label> <label>Value <input name="value" size="60"></label>
<button type="submit">Publish</button></form>
{{template "foot" .}}{{end}}

{{define "mail"}}{{template "head" .}}<h1>Mail outbox</h1>
<p>ssogate writes mail here (<code>{{.Dir}}</code>) when no SMTP server is configured. Newest first.</p>
<table><tr><th>Time</th><th>To</th><th>Subject</th></tr>
{{range .Messages}}<tr><td>{{.Time.Format "15:04:05"}}</td><td>{{range .To}}{{.}} {{end}}</td><td><a href="/mail/{{.Name}}">{{.Subject}}</a></td></tr>
{{else}}<tr><td colspan="3">No mail yet.</td></tr>{{end}}</table>
{{template "foot" .}}{{end}}

{{define "message"}}{{template "head" .}}<h1>{{.Msg.Subject}}</h1>
<p>To: {{range .Msg.To}}{{.}} {{end}}</p>
{{range .Links}}<p><a href="{{.}}">{{.}}</a></p>{{end}}
<pre>{{.Msg.Text}}</pre>
{{template "foot" .}}{{end}}
`))

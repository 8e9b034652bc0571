package demo

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// identityHeaders are the headers ssogate sends upstream.
var identityHeaders = []string{"X-Forwarded-Email", "X-Forwarded-User", "X-Forwarded-Groups", "X-Ssogate-Orgs"}

// jwtHeader carries the signed identity.
const jwtHeader = "X-Ssogate-Jwt-Assertion"

// WhoAmI is what the demo app answers at /whoami: the identity headers it
// received and the JWT claims it verified.
type WhoAmI struct {
	Headers     map[string]string `json:"headers"`
	JWTVerified bool              `json:"jwt_verified"`
	JWTError    string            `json:"jwt_error,omitempty"`
	Claims      map[string]any    `json:"claims,omitempty"`
	// Email and Orgs come from the verified JWT only.
	Email string `json:"email,omitempty"`
	Orgs  string `json:"orgs,omitempty"`
}

// app is the demo app behind the gateway. Like any app behind ssogate, it
// trusts the identity only once it has verified the JWT with the keys the
// gateway publishes; the plain headers are shown for comparison.
type app struct {
	gateway  string
	tools    string
	verifier *oidc.IDTokenVerifier
}

func newApp(gateway, tools string) *app {
	keys := oidc.NewRemoteKeySet(context.Background(), gateway+"/.ssogate/.well-known/jwks.json")
	return &app{gateway: gateway, tools: tools, verifier: oidc.NewVerifier("ssogate", keys, &oidc.Config{
		ClientID:             gateway, // the JWT's audience is the site_url
		SupportedSigningAlgs: []string{oidc.ES256},
	})}
}

func (a *app) whoami(r *http.Request) *WhoAmI {
	w := &WhoAmI{Headers: map[string]string{}}
	for _, h := range identityHeaders {
		if v := r.Header.Get(h); v != "" {
			w.Headers[h] = v
		}
	}
	raw := r.Header.Get(jwtHeader)
	if raw == "" {
		w.JWTError = "no " + jwtHeader + " header: this request did not come through ssogate"
		return w
	}
	tok, err := a.verifier.Verify(r.Context(), raw)
	if err != nil {
		w.JWTError = err.Error()
		return w
	}
	if err := tok.Claims(&w.Claims); err != nil {
		w.JWTError = err.Error()
		return w
	}
	w.JWTVerified = true
	w.Email, _ = w.Claims["email"].(string)
	if orgs, ok := w.Claims["orgs"].([]any); ok {
		var s []string
		for _, o := range orgs {
			if str, ok := o.(string); ok {
				s = append(s, str)
			}
		}
		w.Orgs = strings.Join(s, ",")
	}
	return w
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	who := a.whoami(r)
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path == "/whoami" || strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(who)
		return
	}
	claims, _ := json.MarshalIndent(who.Claims, "", "  ")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_ = appPage.Execute(w, map[string]any{"Who": who, "Headers": identityHeaders, "Claims": string(claims),
		"Gateway": a.gateway, "Tools": a.tools, "Direct": r.Header.Get(jwtHeader) == ""})
}

var appPage = template.Must(template.New("app").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo app</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
pre{background:#f4f4f4;padding:.8rem;overflow:auto}.ok{color:#0a6b2d}.bad{color:#b00020}</style></head>
<body><h1>Demo app</h1>
{{if .Who.JWTVerified}}<p class="ok">Signed in as <strong>{{.Who.Email}}</strong>{{with .Who.Orgs}} — orgs <code>{{.}}</code>{{end}}.
The identity JWT verified with the gateway's keys ({{.Gateway}}/.ssogate/.well-known/jwks.json).</p>
{{else}}<p class="bad">Nobody verified: {{.Who.JWTError}}.</p>
{{if .Direct}}<p>This is the app itself, without ssogate in front: it cannot tell who you are, and must not trust
identity headers that anyone could send. Open it through the gateway: <a href="{{.Gateway}}/">{{.Gateway}}/</a>.</p>{{end}}{{end}}
<h2>Identity headers received</h2>
<table>{{range .Headers}}<tr><th>{{.}}</th><td><code>{{index $.Who.Headers .}}</code></td></tr>{{end}}</table>
{{if .Who.JWTVerified}}<h2>Verified JWT claims (X-Ssogate-Jwt-Assertion)</h2><pre>{{.Claims}}</pre>{{end}}
<p><a href="{{.Gateway}}/.ssogate/logout">Sign out</a> · <a href="{{.Tools}}/">Demo tools</a> (DNS records, mail outbox)</p>
</body></html>
`))

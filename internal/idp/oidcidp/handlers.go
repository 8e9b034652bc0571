package oidcidp

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html/template"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (op *OP) discovery(w http.ResponseWriter, r *http.Request) {
	iss := op.Issuer()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/authorize",
		"token_endpoint":                        iss + "/token",
		"jwks_uri":                              iss + "/keys",
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "email", "profile"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":      []string{"S256"},
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "nonce", "email",
			"email_verified", "name", "given_name", "family_name", "groups", "hd"},
		"authorization_response_iss_parameter_supported": true,
	})
}

func (op *OP) jwks(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	var set jose.JSONWebKeySet
	for _, k := range op.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.id, Algorithm: "RS256", Use: "sig"})
	}
	op.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// authorize handles the authorization request. Problems with the client or
// the redirect URI get a 400 page (never a redirect to an unchecked URI);
// other problems go back to the client as error redirects. With the
// sign-in form, GET shows the form and POST (the form, carrying the
// request's parameters) signs in.
func (op *OP) authorize(w http.ResponseWriter, r *http.Request) {
	var q url.Values
	var username, password string
	switch {
	case r.Method == http.MethodGet:
		q = r.URL.Query()
	case r.Method == http.MethodPost && op.form:
		if err := op.cop.Check(r); err != nil {
			http.Error(w, "oidcidp: cross-origin sign-in refused", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "oidcidp: malformed form", http.StatusBadRequest)
			return
		}
		q = url.Values{}
		for k, vs := range r.PostForm {
			q[k] = append([]string(nil), vs...)
		}
		username, password = q.Get("username"), q.Get("password")
		q.Del("username")
		q.Del("password")
	default:
		http.Error(w, "oidcidp: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	op.lastAuth = q
	for k, vs := range q {
		if len(vs) > 1 {
			http.Error(w, "oidcidp: repeated parameter "+k, http.StatusBadRequest)
			return
		}
	}
	c := op.clients[q.Get("client_id")]
	if c == nil {
		http.Error(w, "oidcidp: unknown client_id", http.StatusBadRequest)
		return
	}
	redirect := q.Get("redirect_uri")
	if !c.allows(redirect) {
		http.Error(w, "oidcidp: redirect_uri is not registered for this client", http.StatusBadRequest)
		return
	}
	state := q.Get("state")
	reply := func(params url.Values) {
		u, _ := url.Parse(redirect) // registered, so it parses
		v := u.Query()
		for k, vs := range params {
			v[k] = vs
		}
		if state != "" {
			v.Set("state", state)
		}
		v.Set("iss", op.Issuer())
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	fail := func(code, desc string) {
		reply(url.Values{"error": {code}, "error_description": {desc}})
	}
	challenge := q.Get("code_challenge")
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "only response_type=code is supported")
		return
	case !slices.Contains(strings.Fields(q.Get("scope")), "openid"):
		fail("invalid_scope", "scope must include openid")
		return
	case state == "":
		fail("invalid_request", "state is required")
		return
	case q.Get("nonce") == "":
		fail("invalid_request", "nonce is required")
		return
	case challenge == "" || q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "PKCE with code_challenge_method=S256 is required")
		return
	case len(challenge) != 43 || strings.ContainsAny(challenge, "+/="):
		fail("invalid_request", "malformed code_challenge")
		return
	}
	var u *User
	if op.form {
		if r.Method == http.MethodGet {
			op.signInForm(w, q, q.Get("login_hint"), "")
			return
		}
		if u = op.checkPassword(username, password); u == nil {
			op.signInForm(w, q, username, "Wrong email or password.")
			return
		}
	} else {
		var err error
		if u, err = op.userFor(q.Get("login_hint")); err != nil {
			fail("access_denied", err.Error())
			return
		}
	}
	code := randString(32)
	op.codes[code] = &authCode{
		clientID: c.id, redirectURI: redirect, challenge: challenge,
		nonce: q.Get("nonce"), subject: u.Subject, issued: op.now(),
	}
	reply(url.Values{"code": {code}})
}

// checkPassword returns the user with this email (or subject) and
// password, or nil. Call with mu held.
func (op *OP) checkPassword(username, password string) *User {
	var found *User
	for _, u := range op.users {
		if u.Subject == username || (u.Email != "" && strings.EqualFold(u.Email, username)) {
			found = u
		}
	}
	if found == nil || found.Password == "" ||
		subtle.ConstantTimeCompare([]byte(found.Password), []byte(password)) != 1 {
		return nil
	}
	return found
}

var signInTemplate = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in – {{.Name}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}
label,input,button{display:block;width:100%;box-sizing:border-box;margin:.3rem 0}
input,button{padding:.5rem;font-size:1rem}.error{color:#b00020}</style></head>
<body><h1>{{.Name}}</h1><p>Sign in to continue to the application.</p>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/authorize">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<label for="username">Email</label>
<input id="username" name="username" type="email" autocomplete="username" value="{{.Username}}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form></body></html>
`))

// signInForm shows the sign-in form for an authorization request whose
// parameters q were checked. Call with mu held.
func (op *OP) signInForm(w http.ResponseWriter, q url.Values, username, errMsg string) {
	type field struct{ Name, Value string }
	var hidden []field
	for _, k := range slices.Sorted(maps.Keys(q)) {
		hidden = append(hidden, field{k, q.Get(k)})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_ = signInTemplate.Execute(w, map[string]any{"Name": op.name, "Hidden": hidden, "Username": username, "Error": errMsg})
}

type tokenError struct {
	status      int
	code, desc  string
	basicFailed bool
}

func (op *OP) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	resp, terr := op.redeem(r)
	if terr != nil {
		if terr.basicFailed {
			w.Header().Set("WWW-Authenticate", `Basic realm="oidcidp"`)
		}
		writeJSON(w, terr.status, map[string]string{"error": terr.code, "error_description": terr.desc})
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

func badRequest(code, desc string) *tokenError {
	return &tokenError{status: http.StatusBadRequest, code: code, desc: desc}
}

// authClient authenticates the client by client_secret_basic or
// client_secret_post (exactly one of them).
func (op *OP) authClient(r *http.Request) (*client, *tokenError) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, badRequest("invalid_request", "malformed basic credentials")
		}
		if r.PostForm.Has("client_secret") {
			return nil, badRequest("invalid_request", "more than one client authentication method")
		}
		if fid := r.PostForm.Get("client_id"); fid != "" && fid != id {
			return nil, badRequest("invalid_request", "client_id does not match the credentials")
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c := op.clients[id]
	if c == nil || secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(c.secret)) != 1 {
		return nil, &tokenError{status: http.StatusUnauthorized, code: "invalid_client",
			desc: "client authentication failed", basicFailed: basic}
	}
	return c, nil
}

func (op *OP) redeem(r *http.Request) (map[string]any, *tokenError) {
	if r.Method != http.MethodPost {
		return nil, &tokenError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "POST required"}
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return nil, badRequest("invalid_request", "form body required")
	}
	if err := r.ParseForm(); err != nil {
		return nil, badRequest("invalid_request", "malformed form")
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	c, terr := op.authClient(r)
	if terr != nil {
		return nil, terr
	}
	f := r.PostForm
	if f.Get("grant_type") != "authorization_code" {
		return nil, badRequest("unsupported_grant_type", "only authorization_code is supported")
	}
	ac := op.codes[f.Get("code")]
	switch {
	case ac == nil:
		return nil, badRequest("invalid_grant", "unknown code")
	case ac.used:
		return nil, badRequest("invalid_grant", "code already used")
	case ac.clientID != c.id:
		return nil, badRequest("invalid_grant", "code was issued to another client")
	}
	ac.used = true // any redemption attempt by its client spends the code
	now := op.now()
	if now.After(ac.issued.Add(CodeTTL)) {
		return nil, badRequest("invalid_grant", "code expired")
	}
	if f.Get("redirect_uri") != ac.redirectURI {
		return nil, badRequest("invalid_grant", "redirect_uri does not match the authorization request")
	}
	if !verifierMatches(f.Get("code_verifier"), ac.challenge) {
		return nil, badRequest("invalid_grant", "PKCE verification failed")
	}
	u := op.users[ac.subject]
	if u == nil {
		return nil, badRequest("invalid_grant", "user no longer exists")
	}
	claims := map[string]any{
		"iss": op.Issuer(), "sub": u.Subject, "aud": c.id, "nonce": ac.nonce,
		"iat": now.Unix(), "exp": now.Add(IDTokenTTL).Unix(), "auth_time": ac.issued.Unix(),
	}
	if u.Email != "" {
		claims["email"] = u.Email
		claims["email_verified"] = u.EmailVerified
	}
	for k, v := range map[string]string{"name": u.Name, "given_name": u.GivenName, "family_name": u.FamilyName, "hd": u.HostedDomain} {
		if v != "" {
			claims[k] = v
		}
	}
	if len(u.Groups) > 0 {
		claims["groups"] = u.Groups
	}
	maps.Copy(claims, u.Extra)
	for k, v := range op.override {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	idToken, err := op.sign(claims)
	if err != nil {
		return nil, &tokenError{status: http.StatusInternalServerError, code: "server_error", desc: err.Error()}
	}
	return map[string]any{
		"access_token": randString(32), "token_type": "Bearer",
		"expires_in": int(IDTokenTTL.Seconds()), "scope": "openid email profile", "id_token": idToken,
	}, nil
}

// verifierMatches checks an RFC 7636 code_verifier against its S256 challenge.
func verifierMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for _, ch := range verifier {
		if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || strings.ContainsRune("-._~", ch)) {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

// sign makes an ID token from claims as the current Signing mode says.
// Call with mu held.
func (op *OP) sign(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	key := op.keys[0]
	var signer jose.Signer
	switch op.signing {
	case SignNone:
		header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": key.id})
		enc := base64.RawURLEncoding.EncodeToString
		return enc(header) + "." + enc(payload) + ".", nil
	case SignHS256WithPublicKey:
		der, err := x509.MarshalPKIXPublicKey(&key.priv.PublicKey)
		if err != nil {
			return "", err
		}
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pemKey},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", key.id))
		if err != nil {
			return "", err
		}
	default:
		priv := key.priv
		if op.signing == SignUnpublishedKey {
			forged, err := newKey()
			if err != nil {
				return "", err
			}
			priv = forged.priv
		}
		signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256,
			Key: jose.JSONWebKey{Key: priv, KeyID: key.id, Algorithm: "RS256"}},
			(&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			return "", err
		}
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return obj.CompactSerialize()
}

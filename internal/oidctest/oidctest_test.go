package oidctest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	cb       = "https://rp.example/cb"
	verifier = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
)

func challenge() string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func setup(t *testing.T) *OP {
	op := Start(t)
	op.AddClient("rp", "pw", cb)
	op.AddClient("rp2", "pw2", cb)
	op.AddUser(User{Subject: "u1", Email: "u1@example.com", EmailVerified: true, Groups: []string{"g"}})
	return op
}

func authParams(edit func(url.Values)) url.Values {
	v := url.Values{"client_id": {"rp"}, "redirect_uri": {cb}, "response_type": {"code"},
		"scope": {"openid email"}, "state": {"st"}, "nonce": {"n1"}, "login_hint": {"u1@example.com"},
		"code_challenge": {challenge()}, "code_challenge_method": {"S256"}}
	if edit != nil {
		edit(v)
	}
	return v
}

// authorize returns the callback query the OP redirects to.
func authorize(t *testing.T, op *OP, edit func(url.Values)) url.Values {
	t.Helper()
	loc, err := op.Login(op.Issuer() + "/authorize?" + authParams(edit).Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc.String(), cb+"?") {
		t.Fatalf("redirected to %s", loc)
	}
	return loc.Query()
}

// redeem posts to /token with client_secret_post unless basic is set.
func redeem(t *testing.T, op *OP, code string, basic bool, edit func(url.Values)) (int, map[string]any) {
	t.Helper()
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cb},
		"code_verifier": {verifier}}
	if !basic {
		f.Set("client_id", "rp")
		f.Set("client_secret", "pw")
	}
	if edit != nil {
		edit(f)
	}
	req, _ := http.NewRequest(http.MethodPost, op.Issuer()+"/token", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth("rp", "pw")
	}
	resp, err := op.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestCodeFlowAndTokenSignature(t *testing.T) {
	op := setup(t)
	q := authorize(t, op, nil)
	if q.Get("state") != "st" || q.Get("iss") != op.Issuer() || q.Get("code") == "" {
		t.Fatalf("callback query %v", q)
	}
	status, body := redeem(t, op, q.Get("code"), true, nil)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, body)
	}
	resp, err := op.HTTPClient().Get(op.Issuer() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks: %v %d keys", err, len(set.Keys))
	}
	jws, err := jose.ParseSigned(body["id_token"].(string), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(set.Keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	if claims["iss"] != op.Issuer() || claims["aud"] != "rp" || claims["sub"] != "u1" ||
		claims["nonce"] != "n1" || claims["email_verified"] != true || claims["groups"] == nil {
		t.Errorf("claims %v", claims)
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	op := setup(t)
	for name, edit := range map[string]func(url.Values){
		"unknown client":       func(v url.Values) { v.Set("client_id", "nope") },
		"unregistered uri":     func(v url.Values) { v.Set("redirect_uri", "https://evil.example/cb") },
		"repeated redirect":    func(v url.Values) { v.Add("redirect_uri", "https://evil.example/cb") },
		"uri of other variant": func(v url.Values) { v.Set("redirect_uri", cb+"/") },
	} {
		if _, err := op.Login(op.Issuer() + "/authorize?" + authParams(edit).Encode()); err == nil ||
			!strings.Contains(err.Error(), "400") {
			t.Errorf("%s: err = %v, want a 400 page", name, err)
		}
	}
	for name, edit := range map[string]func(url.Values){
		"no PKCE":       func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") },
		"plain PKCE":    func(v url.Values) { v.Set("code_challenge_method", "plain") },
		"no nonce":      func(v url.Values) { v.Del("nonce") },
		"implicit":      func(v url.Values) { v.Set("response_type", "id_token") },
		"no openid":     func(v url.Values) { v.Set("scope", "email") },
		"nobody signed": func(v url.Values) { v.Del("login_hint") },
	} {
		q := authorize(t, op, edit)
		if q.Get("error") == "" || q.Has("code") || q.Get("state") != "st" {
			t.Errorf("%s: callback %v, want an error", name, q)
		}
	}
	if q := authorize(t, op, func(v url.Values) { v.Del("state") }); q.Get("error") != "invalid_request" {
		t.Errorf("no state: %v", q)
	}
	op.SetNextUser("u1")
	if q := authorize(t, op, func(v url.Values) { v.Set("login_hint", "unknown@x") }); q.Get("code") == "" {
		t.Errorf("NextUser not signed in: %v", q)
	}
}

func TestTokenRefusals(t *testing.T) {
	op := setup(t)
	now := time.Now()
	var mu sync.Mutex
	op.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	cases := map[string]struct {
		basic  bool
		edit   func(url.Values)
		status int
		code   string
	}{
		"wrong secret":      {edit: func(f url.Values) { f.Set("client_secret", "x") }, status: 401, code: "invalid_client"},
		"no client auth":    {edit: func(f url.Values) { f.Del("client_secret") }, status: 401, code: "invalid_client"},
		"two auth methods":  {basic: true, edit: func(f url.Values) { f.Set("client_secret", "pw") }, status: 400, code: "invalid_request"},
		"other client":      {edit: func(f url.Values) { f.Set("client_id", "rp2"); f.Set("client_secret", "pw2") }, status: 400, code: "invalid_grant"},
		"wrong grant type":  {edit: func(f url.Values) { f.Set("grant_type", "password") }, status: 400, code: "unsupported_grant_type"},
		"wrong redirect":    {edit: func(f url.Values) { f.Set("redirect_uri", cb+"x") }, status: 400, code: "invalid_grant"},
		"wrong verifier":    {edit: func(f url.Values) { f.Set("code_verifier", verifier+"x") }, status: 400, code: "invalid_grant"},
		"no verifier":       {edit: func(f url.Values) { f.Del("code_verifier") }, status: 400, code: "invalid_grant"},
		"unknown code":      {edit: func(f url.Values) { f.Set("code", "nope") }, status: 400, code: "invalid_grant"},
		"challenge as verf": {edit: func(f url.Values) { f.Set("code_verifier", challenge()) }, status: 400, code: "invalid_grant"},
	}
	for name, tc := range cases {
		code := authorize(t, op, nil).Get("code")
		if status, body := redeem(t, op, code, tc.basic, tc.edit); status != tc.status || body["error"] != tc.code {
			t.Errorf("%s: %d %v, want %d %s", name, status, body, tc.status, tc.code)
		}
	}
	code := authorize(t, op, nil).Get("code")
	if status, _ := redeem(t, op, code, false, nil); status != 200 {
		t.Fatalf("client_secret_post: %d", status)
	}
	if _, body := redeem(t, op, code, false, nil); body["error"] != "invalid_grant" {
		t.Errorf("second use: %v", body)
	}
	code = authorize(t, op, nil).Get("code")
	mu.Lock()
	now = now.Add(CodeTTL + time.Second)
	mu.Unlock()
	if _, body := redeem(t, op, code, false, nil); body["error"] != "invalid_grant" {
		t.Errorf("expired code: %v", body)
	}
}

func TestAttackSigning(t *testing.T) {
	op := setup(t)
	for _, s := range []Signing{SignNone, SignHS256WithPublicKey} {
		op.SetSigning(s)
		_, body := redeem(t, op, authorize(t, op, nil).Get("code"), false, nil)
		parts := strings.Split(body["id_token"].(string), ".")
		hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
		var h map[string]any
		_ = json.Unmarshal(hdr, &h)
		want := map[Signing]string{SignNone: "none", SignHS256WithPublicKey: "HS256"}[s]
		if h["alg"] != want || (s == SignNone && parts[2] != "") {
			t.Errorf("mode %d: header %v", s, h)
		}
	}
}

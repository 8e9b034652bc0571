package caddymodule_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	goredis "github.com/redis/go-redis/v9"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/ssogate/ssogate/internal/dnstest"
	"github.com/ssogate/ssogate/internal/gatewaytest"
	"github.com/ssogate/ssogate/internal/redistest"
	"github.com/ssogate/ssogate/internal/samltest"
	"github.com/ssogate/ssogate/session"
)

// auditCSRF is the X-Ssogate-Csrf value of a session cookie on a gateway
// configured with secret: an HMAC of the session's store ID under the key
// derived from the secret (what the console puts in its pages). Tests use
// it to call the admin API as a signed-in person.
func auditCSRF(secret, cookie string) string {
	id, _, _ := strings.Cut(cookie, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(id)
	sum := sha256.Sum256(raw)
	m := hmac.New(sha256.New, session.DeriveKey([]byte(secret), "csrf"))
	m.Write([]byte(base64.RawURLEncoding.EncodeToString(sum[:])))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// auditEvent is one event of GET /audit-events.
type auditEvent struct {
	ID       string            `json:"id"`
	Time     string            `json:"time"`
	ParentID string            `json:"parent_id"`
	OrgID    string            `json:"org_id"`
	Actor    string            `json:"actor"`
	Action   string            `json:"action"`
	Target   string            `json:"target"`
	Outcome  string            `json:"outcome"`
	Reason   string            `json:"reason"`
	Details  map[string]string `json:"details"`
	Address  string            `json:"address"`
}

type auditPage struct {
	Events     []auditEvent `json:"events"`
	NextCursor string       `json:"next_cursor"`
}

// auditGet calls GET /audit-events?query with an API key, or with a
// session cookie and CSRF header when key is "cookie:<cookie>|<csrf>".
func auditGet(t *testing.T, g *gatewaytest.Gateway, key, query string) (int, auditPage, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", g.URL+"/.ssogate/api/v1/audit-events?"+query, nil)
	if c, ok := strings.CutPrefix(key, "cookie:"); ok {
		cookie, csrf, _ := strings.Cut(c, "|")
		req.Header.Set("Cookie", "ssogate_session="+cookie)
		req.Header.Set("X-Ssogate-Csrf", csrf)
	} else if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw := gatewaytest.ReadBody(t, resp)
	var page auditPage
	var generic map[string]any
	if err := json.Unmarshal([]byte(raw), &generic); err != nil {
		t.Fatalf("audit-events?%s: %d non-JSON body %q", query, resp.StatusCode, raw)
	}
	if resp.StatusCode == 200 {
		if err := json.Unmarshal([]byte(raw), &page); err != nil {
			t.Fatal(err)
		}
		if _, ok := generic["next_cursor"]; !ok || generic["events"] == nil {
			t.Fatalf("audit-events?%s: %s", query, raw)
		}
	}
	return resp.StatusCode, page, generic
}

// auditAll pages through a listing with the given page size.
func auditAll(t *testing.T, g *gatewaytest.Gateway, key string, q url.Values, pageSize int) []auditEvent {
	t.Helper()
	var out []auditEvent
	q.Set("limit", strconv.Itoa(pageSize))
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		code, page, body := auditGet(t, g, key, q.Encode())
		if code != 200 {
			t.Fatalf("audit-events?%s: %d %v", q.Encode(), code, body)
		}
		if len(page.Events) > pageSize {
			t.Fatalf("page of %d events for limit %d", len(page.Events), pageSize)
		}
		out = append(out, page.Events...)
		if page.NextCursor == "" {
			return out
		}
		q.Set("cursor", page.NextCursor)
	}
}

func auditIDs(evs []auditEvent) []string {
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	return ids
}

func TestAuditEventsAPI(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global("ssogate {\n\t\tsecret "+testSecret+"\n\t}")+siteBlock(up.URL), gatewaytest.Options{})
	acmeOwner := signIn(t, g, "owner@acme.com", "acme", "owner", true)
	rivalOwner := signIn(t, g, "owner@rival.com", "rival", "owner", true)
	acme := apiClient{t, g.URL, acmeOwner.APIKey}
	rival := apiClient{t, g.URL, rivalOwner.APIKey}
	admin := signIn(t, g, "admin@acme.com", "acme", "admin", false)
	member := signIn(t, g, "bob@acme.com", "acme", "member", false)
	asOwner := "cookie:" + acmeOwner.Cookie + "|" + auditCSRF(testSecret, acmeOwner.Cookie)

	// Admin actions on both sides.
	for _, slug := range []string{"acme-a", "acme-b", "acme-c"} {
		if code, body := acme.do("POST", "/orgs", "application/json", `{"slug":"`+slug+`","name":"`+slug+`"}`); code != 201 {
			t.Fatalf("create %s: %d %v", slug, code, body)
		}
	}
	for _, email := range []string{"carol@carol.example", "dave@dave.example"} {
		if code, body := acme.do("POST", "/orgs/acme/members", "application/json", `{"email":"`+email+`","role":"member"}`); code != 201 {
			t.Fatalf("invite %s: %d %v", email, code, body)
		}
	}
	for _, slug := range []string{"rival-a", "rival-b"} {
		if code, body := rival.do("POST", "/orgs", "application/json", `{"slug":"`+slug+`","name":"`+slug+`"}`); code != 201 {
			t.Fatalf("create %s: %d %v", slug, code, body)
		}
	}
	if code, body := rival.do("POST", "/orgs/rival/members", "application/json", `{"email":"erin@erin.example","role":"member"}`); code != 201 {
		t.Fatalf("rival invite: %d %v", code, body)
	}
	// The owner signed in with a browser acts too (the API with a cookie).
	req, _ := http.NewRequest("POST", g.URL+"/.ssogate/api/v1/orgs", strings.NewReader(`{"slug":"acme-d","name":"acme-d"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cookie", "ssogate_session="+acmeOwner.Cookie)
	req.Header.Set("X-Ssogate-Csrf", auditCSRF(testSecret, acmeOwner.Cookie))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := gatewaytest.ReadBody(t, resp); resp.StatusCode != 201 {
		t.Fatalf("create acme-d with a session: %d %s", resp.StatusCode, body)
	}

	// The whole list: only acme's events, newest first, every field there.
	code, page, body := auditGet(t, g, acme.key, "")
	if code != 200 || page.NextCursor != "" {
		t.Fatalf("list: %d %v", code, body)
	}
	all := page.Events
	count := map[string]int{}
	for i, e := range all {
		count[e.Action]++
		if e.ParentID != acmeOwner.ParentID || strings.Contains(e.Target, "rival") || strings.Contains(e.Target, "erin") {
			t.Fatalf("another parent org's event in acme's list: %+v", e)
		}
		ts, err := time.Parse(time.RFC3339, e.Time)
		if err != nil || time.Since(ts) > time.Minute || time.Until(ts) > time.Second {
			t.Fatalf("event time %q: %v", e.Time, err)
		}
		if e.ID == "" || e.Actor == "" || e.Action == "" || e.Outcome != "success" || e.Address != "127.0.0.1" {
			t.Fatalf("event %+v", e)
		}
		if i > 0 && all[i-1].ID <= e.ID {
			t.Fatalf("not newest first: %s then %s", all[i-1].ID, e.ID)
		}
	}
	if count["org.create"] != 4 || count["member.invite"] != 2 || len(all) != 6 {
		t.Fatalf("acme's events: %v\n%s", count, jsonOf(body))
	}
	if e := all[0]; e.Action != "org.create" || e.Target != "acme-d" || e.Actor != "owner@acme.com" {
		t.Fatalf("newest event: %+v", e)
	}
	for _, e := range all {
		if e.Action == "member.invite" && (e.OrgID != acmeOwner.OrgID || e.Actor != "api:test" || !strings.HasSuffix(e.Target, ".example")) {
			t.Fatalf("invite event: %+v", e)
		}
	}

	// Filters are prefixes.
	for query, want := range map[string]int{
		"action=org.create":      4,
		"action=org.":            4,
		"action=member.":         2,
		"action=member.invite":   2,
		"action=nothing":         0,
		"actor=api:":             5,
		"actor=owner@acme.com":   1,
		"actor=owner@rival.com":  0,
		"action=org&actor=api:t": 3,
	} {
		code, page, body := auditGet(t, g, acme.key, query)
		if code != 200 || len(page.Events) != want {
			t.Fatalf("%s: %d, %d events, want %d: %v", query, code, len(page.Events), want, body)
		}
		for _, e := range page.Events {
			q, _ := url.ParseQuery(query)
			if !strings.HasPrefix(e.Action, q.Get("action")) || !strings.HasPrefix(e.Actor, q.Get("actor")) {
				t.Fatalf("%s: %+v", query, e)
			}
		}
	}

	// Paging: any page size gives the same events; oldest first is the reverse.
	for _, size := range []int{1, 2, 4, 500} {
		got := auditAll(t, g, acme.key, url.Values{}, size)
		if !slices.Equal(auditIDs(got), auditIDs(all)) {
			t.Fatalf("pages of %d: %v, want %v", size, auditIDs(got), auditIDs(all))
		}
		oldest := auditAll(t, g, acme.key, url.Values{"order": {"oldest"}}, size)
		want := slices.Clone(auditIDs(all))
		slices.Reverse(want)
		if !slices.Equal(auditIDs(oldest), want) {
			t.Fatalf("oldest first, pages of %d: %v, want %v", size, auditIDs(oldest), want)
		}
	}
	creates := auditAll(t, g, acme.key, url.Values{"action": {"org.create"}}, 3)
	if len(creates) != 4 || creates[0].Target != "acme-d" || creates[3].Target != "acme-a" {
		t.Fatalf("org.create paged by 3: %s", jsonOf(creates))
	}
	_, first, _ := auditGet(t, g, acme.key, "limit=2")
	if len(first.Events) != 2 || first.NextCursor == "" {
		t.Fatalf("first page of 2: %+v", first)
	}

	// Cross-tenant: rival sees its own three events only, also with a
	// cursor taken from acme's listing.
	for _, query := range []string{"", "cursor=" + url.QueryEscape(first.NextCursor), "actor=api:test", "action=org.create&limit=500"} {
		code, page, body := auditGet(t, g, rival.key, query)
		if code != 200 {
			t.Fatalf("rival %q: %d %v", query, code, body)
		}
		for _, e := range page.Events {
			if e.ParentID != rivalOwner.ParentID || strings.HasPrefix(e.Target, "acme") || strings.Contains(e.Target, "carol") || strings.Contains(e.Target, "dave") {
				t.Fatalf("rival %q sees another parent org's event: %+v", query, e)
			}
		}
		if query == "" && len(page.Events) != 3 {
			t.Fatalf("rival's events: %s", jsonOf(body))
		}
	}

	// Bad parameters: 400 in the API's error shape.
	for _, query := range []string{
		"limit=0", "limit=501", "limit=-1", "limit=ten", "limit=1.5",
		"order=sideways", "order=NEWEST",
		"cursor=garbage!", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("n:short")),
		"cursor=" + base64.RawURLEncoding.EncodeToString([]byte("x:"+all[0].ID)),
		"order=oldest&cursor=" + url.QueryEscape(first.NextCursor), // a newest-first cursor
		"action=a%00b", "actor=" + strings.Repeat("a", 257), "action=a&action=b",
	} {
		code, _, body := auditGet(t, g, acme.key, query)
		e, _ := body["error"].(map[string]any)
		if code != 400 || e == nil || e["code"] == "" || e["message"] == "" {
			t.Fatalf("%s: %d %v, want 400 with an error", query, code, body)
		}
	}

	// Owners only: the owner's session works; an admin's or a member's is
	// refused (with a good CSRF header, so it is the role that counts).
	if code, page, body := auditGet(t, g, asOwner, "action=org.create"); code != 200 || len(page.Events) != 4 {
		t.Fatalf("owner with a session: %d %v", code, body)
	}
	for who, cookie := range map[string]string{"admin": admin.Cookie, "member": member.Cookie} {
		code, _, body := auditGet(t, g, "cookie:"+cookie+"|"+auditCSRF(testSecret, cookie), "")
		if code != 403 || errCode(body) != "forbidden" {
			t.Fatalf("%s: %d %v, want 403 forbidden", who, code, body)
		}
	}
	if code, _, body := auditGet(t, g, "cookie:"+acmeOwner.Cookie+"|wrong", ""); code != 403 || errCode(body) != "csrf" {
		t.Fatalf("owner with a wrong CSRF header: %d %v", code, body)
	}
	if code, _, _ := auditGet(t, g, "", ""); code != 401 {
		t.Fatalf("no credentials: %d", code)
	}
	// Reading the log changes nothing, so it writes no event.
	if _, page, _ := auditGet(t, g, acme.key, "limit=500"); len(page.Events) != len(all) {
		t.Fatalf("listing wrote events: %d, was %d", len(page.Events), len(all))
	}
}

// A SAML connection whose IdP metadata has expired is refused when it is
// created: nothing is stored, and the admin is told what to fix.
func TestConnectionWithExpiredMetadataRefused(t *testing.T) {
	t.Parallel()
	idp := samltest.Start(t, samltest.Options{})
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global()+siteBlock(up.URL), gatewaytest.Options{})
	api := apiClient{t, g.URL, signIn(t, g, "owner@acme.com", "acme", "owner", true).APIKey}
	md := string(idp.MetadataXML())
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	expired := idp.MetadataXMLValidUntil(t, past)
	in, _ := json.Marshal(map[string]string{"type": "saml", "name": "Old Okta", "metadata_xml": expired})
	code, body := api.do("POST", "/connections", "application/json", string(in))
	msg, _ := body["error"].(map[string]any)["message"].(string)
	if code != 400 || errCode(body) != "invalid_metadata" || !strings.Contains(msg, "IdP metadata: expired at "+past.Format(time.RFC3339)) {
		t.Fatalf("expired metadata: %d %v", code, body)
	}
	if code, list := api.do("GET", "/connections", "", ""); code != 200 || strings.Contains(jsonOf(list), "Old Okta") {
		t.Fatalf("connections after the refusal: %d %s", code, jsonOf(list))
	}
	if _, page, _ := auditGet(t, g, api.key, "action=connection."); len(page.Events) != 0 {
		t.Fatalf("a refused connection was audited as created: %+v", page.Events)
	}
	// The same metadata, fresh, is accepted.
	in, _ = json.Marshal(map[string]string{"type": "saml", "name": "Okta", "metadata_xml": md})
	if code, body := api.do("POST", "/connections", "application/json", string(in)); code != 201 {
		t.Fatalf("fresh metadata: %d %v", code, body)
	}
}

// freshRateWindow waits, if needed, for a new minute, so that a test of
// per-minute limits does not straddle two fixed windows.
func freshRateWindow(t *testing.T, need time.Duration) {
	t.Helper()
	now := time.Now()
	if left := now.Truncate(time.Minute).Add(time.Minute).Sub(now); left < need {
		time.Sleep(left + 50*time.Millisecond)
	}
}

// Sign-in starts (POST /login) are limited per email (20 a minute) and per
// client address (60 a minute), with 429, Retry-After and a page a person
// can read.
func TestSignInStartRateLimit(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global()+siteBlock(up.URL), gatewaytest.Options{})
	b := newBrowser(t)
	_, page := b.get(g.URL + "/.ssogate/login")
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the login page:\n%s", page)
	}
	// sso=true: the SSO-only page, which sends no mail, so the sign-in
	// link limits (per hour) stay out of the way.
	start := func(email string) (*http.Response, string) {
		return b.post(g.URL+"/.ssogate/login", url.Values{"email": {email}, "csrf": {m[1]}, "sso": {"true"}})
	}
	limited := func(resp *http.Response, page, text string) {
		t.Helper()
		retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != 429 || err != nil || retry < 1 || retry > 61 ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(page, text) {
			t.Fatalf("want 429 with Retry-After and %q: %d, Retry-After %q:\n%s", text, resp.StatusCode, resp.Header.Get("Retry-After"), page)
		}
	}

	freshRateWindow(t, 20*time.Second)
	// Per email: 20, then refused (other spellings of it too).
	for i := 1; i <= 20; i++ {
		if resp, page := start("target@victim.example"); resp.StatusCode != 200 {
			t.Fatalf("start %d: %d\n%s", i, resp.StatusCode, page)
		}
	}
	resp, page := start("Target@Victim.example")
	limited(resp, page, "Too many sign-in attempts for this email address")
	// Another email from the same address still starts, up to 60 starts
	// from the address (the refused one counted: 21 so far).
	for i := 22; i <= 60; i++ {
		if resp, page := start("user" + strconv.Itoa(i) + "@other.example"); resp.StatusCode != 200 {
			t.Fatalf("start %d from the address: %d\n%s", i, resp.StatusCode, page)
		}
	}
	resp, page = start("fresh@other.example")
	limited(resp, page, "Too many sign-in attempts from your network")
	// The limit is the address's, not the browser's; bad input counts too.
	other := newBrowser(t)
	_, p2 := other.get(g.URL + "/.ssogate/login")
	resp, page = other.post(g.URL+"/.ssogate/login", url.Values{"email": {"not an email"}, "csrf": {csrfRe.FindStringSubmatch(p2)[1]}})
	limited(resp, page, "Too many sign-in attempts from your network")
	if !g.Logged(`"msg":"sign-in start rate limited"`) {
		t.Fatal("rate limiting was not logged")
	}
	_, metrics := newBrowser(t).get("http://" + g.Admin + "/metrics")
	if !strings.Contains(metrics, `ssogate_sign_ins_total{method="login",outcome="rate_limited"} 3`) {
		t.Fatalf("metrics lack the rate-limited starts:\n%s", metrics)
	}
}

// Rate limits fail closed: when the store cannot count (here: Redis
// refuses the rate-limit keys by ACL while every other key works), the
// admin API, SCIM and sign-in starts answer 503, never "unlimited".
func TestRateLimitsFailClosed(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := upstream(t)
	g := gatewaytest.Start(t, redisGlobal(rs.URL())+siteBlock(up.URL), gatewaytest.Options{})
	owner := signIn(t, g, "owner@acme.com", "acme", "owner", true)
	api := apiClient{t, g.URL, owner.APIKey}
	code, tok := api.do("POST", "/orgs/acme/scim-tokens", "application/json", `{"name":"Okta"}`)
	if code != 201 {
		t.Fatalf("SCIM token: %d %v", code, tok)
	}
	sc := scimClient{t, g.URL, tok["token"].(string)}
	b := newBrowser(t)
	_, page := b.get(g.URL + "/.ssogate/login")
	csrf := csrfRe.FindStringSubmatch(page)[1]
	startLogin := func() int {
		resp, _ := b.post(g.URL+"/.ssogate/login", url.Values{"email": {"x@y.example"}, "csrf": {csrf}, "sso": {"true"}})
		return resp.StatusCode
	}
	check := func(when string, want int) {
		t.Helper()
		if code, body := api.do("GET", "/orgs", "", ""); code != want || (want == 503 && errCode(body) != "unavailable") {
			t.Fatalf("%s: admin API %d %v, want %d", when, code, body, want)
		}
		healthy(t, g, owner.Cookie)
		if code, body := sc.do("GET", "/Users", ""); code != want || (want == 503 && (body["status"] != "503" || body["schemas"] == nil)) {
			t.Fatalf("%s: SCIM %d %v, want %d", when, code, body, want)
		}
		healthy(t, g, owner.Cookie)
		if code := startLogin(); code != want {
			t.Fatalf("%s: POST /login %d, want %d", when, code, want)
		}
		healthy(t, g, owner.Cookie)
	}
	check("before", 200)

	ctx := context.Background()
	rc := goredis.NewClient(&goredis.Options{Addr: rs.Addr()})
	defer rc.Close()
	// Every key but the rate-limit counters ("{ssogate}:rl/…").
	if err := rc.Do(ctx, "ACL", "SETUSER", "default", "resetkeys", "~{ssogate}#*", "~{ssogate}!*",
		"~{ssogate}:[^r]*", "~{ssogate}:r[^l]*", "~{ssogate}:rl[^/]*").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Get(ctx, "{ssogate}:rl/x").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("the ACL does not refuse counters: %v", err)
	}
	if err := rc.Get(ctx, "{ssogate}:session/x").Err(); err != goredis.Nil {
		t.Fatalf("the ACL refuses other keys: %v", err)
	}
	check("counters refused", 503)
	if !g.Logged("rate limit unavailable; refusing") || !g.Logged("store unreachable; failing closed") {
		t.Fatal("the refusals were not logged")
	}

	if err := rc.Do(ctx, "ACL", "SETUSER", "default", "allkeys").Err(); err != nil {
		t.Fatal(err)
	}
	check("counters back", 200)
}

// healthy waits until the gateway passes a signed-in request again (the
// health probe, every 100 ms in redisGlobal, has found the store).
func healthy(t *testing.T, g *gatewaytest.Gateway, cookie string) {
	t.Helper()
	waitStatus(t, g, cookie, http.StatusOK, 5*time.Second)
}

// signAsSAMLIdP signs el (an Assertion or a Response, its old signature
// dropped) with the test IdP's key as samlidp does: exclusive c14n,
// RSA-SHA256, the signature right after the Issuer.
func signAsSAMLIdP(t *testing.T, idp *samltest.IdP, el *etree.Element) *etree.Element {
	t.Helper()
	cfg := idp.Server.IDP
	sc := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{
		Certificate: [][]byte{cfg.Certificate.Raw}, PrivateKey: cfg.Key, Leaf: cfg.Certificate}))
	sc.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := sc.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatal(err)
	}
	unsigned := el.Copy()
	if sig := unsigned.SelectElement("ds:Signature"); sig != nil {
		unsigned.RemoveChild(sig)
	}
	signed, err := sc.SignEnveloped(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	// goxmldsig appends the signature without parenting it.
	sig := signed.Child[len(signed.Child)-1].(*etree.Element)
	signed.Child = signed.Child[:len(signed.Child)-1]
	signed.InsertChildAt(signed.SelectElement("saml:Issuer").Index()+1, sig)
	return signed
}

// rewriteSPMetadata edits the encryption key of SP metadata: drop it (the
// IdP then sends the assertion in the clear) or keep only AES-128-CBC.
func rewriteSPMetadata(t *testing.T, md string, dropKey bool) []byte {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(md); err != nil {
		t.Fatal(err)
	}
	for _, kd := range doc.FindElements("//KeyDescriptor[@use='encryption']") {
		if dropKey {
			kd.Parent().RemoveChild(kd)
			continue
		}
		for _, m := range kd.SelectElements("EncryptionMethod") {
			if alg := m.SelectAttrValue("Algorithm", ""); !strings.HasSuffix(alg, "#aes128-cbc") && !strings.Contains(alg, "rsa-oaep") {
				kd.RemoveChild(m)
			}
		}
	}
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The SAML hardening switches through the gateway: each refused sign-in
// is audited with its reason, and leaves no session, no account and no
// membership behind.
func TestSAMLHardeningAtTheGateway(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t)
	idp := samltest.Start(t, samltest.Options{})
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global("ssogate {\n\t\tdns_resolver "+dns.Addr+"\n\t\tallow_private_idps\n\t}")+siteBlock(up.URL), gatewaytest.Options{})

	// tenant makes a parent org with a verified domain and one SAML
	// connection (registered at the IdP with its SP metadata edited).
	tenant := func(slug, domain, connBody string, spMD func(string) []byte) (apiClient, string) {
		api := apiClient{t, g.URL, signIn(t, g, "owner@"+domain, slug, "owner", true).APIKey}
		verifiedDomain(t, api, dns, domain)
		code, conn := api.do("POST", "/connections", "application/json", connBody)
		if code != 201 {
			t.Fatalf("%s connection: %d %v", slug, code, conn)
		}
		if spMD != nil {
			_, md := newBrowser(t).get(conn["setup"].(map[string]any)["entity_id"].(string))
			idp.RegisterSP(t, spMD(md))
		}
		return api, conn["id"].(string)
	}
	byURL := `{"type":"saml","name":"IdP","metadata_url":"` + idp.MetadataURL() + `"}`
	// refusedAndAudited checks what a refused sign-in left behind.
	refusedAndAudited := func(api apiClient, b *browser, org, connID, email string, reasons ...string) {
		t.Helper()
		if r, _ := b.get(g.URL + "/"); r.StatusCode != 302 {
			t.Fatalf("%s: a refused sign-in created a session (%d)", email, r.StatusCode)
		}
		if _, list := api.do("GET", "/orgs/"+org+"/members", "", ""); strings.Contains(jsonOf(list), email) {
			t.Fatalf("%s: a refused sign-in created a member: %s", email, jsonOf(list))
		}
		_, page, _ := auditGet(t, g, api.key, "action=login")
		if len(page.Events) != 1 {
			t.Fatalf("%s: login events %s, want one refusal", email, jsonOf(page.Events))
		}
		e := page.Events[0]
		if e.Outcome != "failure" || !slices.Contains(reasons, e.Reason) || e.Target != connID || e.Actor != email {
			t.Fatalf("%s: audit event %+v, want a failure with reason %v", email, e, reasons)
		}
	}

	t.Run("signed assertion with an unknown Condition", func(t *testing.T) {
		api, connID := tenant("acme", "acme.com", byURL, func(md string) []byte { return rewriteSPMetadata(t, md, true) })
		idp.AddUser(t, "alice", "pw", "alice@acme.com", nil)
		b := newBrowser(t)
		resp, _ := b.startLogin(g, "alice@acme.com", "/", url.Values{"method": {"sso"}})
		acs, form := idp.Login(t, &http.Client{}, location(t, resp, 303), "alice", "pw")
		raw, _ := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(raw); err != nil {
			t.Fatal(err)
		}
		assertion := doc.Root().SelectElement("saml:Assertion")
		if assertion == nil {
			t.Fatalf("no plaintext assertion: %s", raw)
		}
		forged := assertion.Copy()
		cond := forged.SelectElement("saml:Conditions").CreateElement("ext:OnlyOnTuesdays")
		cond.CreateAttr("xmlns:ext", "urn:example:conditions")
		i := assertion.Index()
		doc.Root().RemoveChild(assertion)
		doc.Root().InsertChildAt(i, signAsSAMLIdP(t, idp, forged))
		doc.SetRoot(signAsSAMLIdP(t, idp, doc.Root()))
		out, _ := doc.WriteToBytes()
		form.Set("SAMLResponse", base64.StdEncoding.EncodeToString(out))
		resp, page := b.post(acs, form)
		if resp.StatusCode != 403 {
			t.Fatalf("unknown condition: %d\n%s", resp.StatusCode, page)
		}
		contains(t, page, "Sign-in failed")
		refusedAndAudited(api, b, "acme", connID, "alice@acme.com", "unsupported")
	})

	t.Run("AES-CBC assertion in an unsigned Response", func(t *testing.T) {
		api, connID := tenant("beta", "beta.com", byURL, func(md string) []byte { return rewriteSPMetadata(t, md, false) })
		idp.AddUser(t, "bob", "pw", "bob@beta.com", nil)
		b := newBrowser(t)
		resp, _ := b.startLogin(g, "bob@beta.com", "/", url.Values{"method": {"sso"}})
		acs, form := idp.Login(t, &http.Client{}, location(t, resp, 303), "bob", "pw")
		raw, _ := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
		if !strings.Contains(string(raw), "xmlenc#aes128-cbc") {
			t.Fatalf("the IdP did not encrypt with AES-128-CBC: %s", raw)
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(raw); err != nil {
			t.Fatal(err)
		}
		doc.Root().RemoveChild(doc.Root().SelectElement("ds:Signature"))
		out, _ := doc.WriteToBytes()
		form.Set("SAMLResponse", base64.StdEncoding.EncodeToString(out))
		if resp, page := b.post(acs, form); resp.StatusCode != 403 {
			t.Fatalf("unsigned CBC response: %d\n%s", resp.StatusCode, page)
		}
		refusedAndAudited(api, b, "beta", connID, "bob@beta.com", "signature")
		if !g.Logged("RequireSignedResponseForCBC") {
			t.Fatal("the cause is not in the log")
		}
		// The IdP's signed CBC response goes through: the refusal was the
		// missing signature.
		b2 := newBrowser(t)
		resp, _ = b2.startLogin(g, "bob@beta.com", "/", url.Values{"method": {"sso"}})
		acs, form = idp.Login(t, &http.Client{}, location(t, resp, 303), "bob", "pw")
		if resp, _ := b2.post(acs, form); resp.StatusCode != 303 {
			t.Fatalf("signed CBC response: %d", resp.StatusCode)
		}
	})

	t.Run("IdP metadata that expired after the connection was made", func(t *testing.T) {
		until := time.Now().Add(3 * time.Second).UTC()
		md := idp.MetadataXMLValidUntil(t, until)
		body, _ := json.Marshal(map[string]string{"type": "saml", "name": "IdP", "metadata_xml": md})
		api, connID := tenant("gamma", "gamma.com", string(body), nil)
		time.Sleep(time.Until(until) + 100*time.Millisecond)
		b := newBrowser(t)
		resp, page := b.startLogin(g, "carol@gamma.com", "/", url.Values{"method": {"sso"}})
		if resp.StatusCode != 403 || resp.Header.Get("Location") != "" {
			t.Fatalf("sign-in with expired metadata: %d (Location %q)\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
		}
		refusedAndAudited(api, b, "gamma", connID, "carol@gamma.com", "idp_metadata_expired")
		if !g.Logged("IdP metadata: expired at ") {
			t.Fatal("the cause is not in the log")
		}
	})
}

// Package samltest runs a real SAML identity provider (crewjam's samlidp,
// see internal/idp/samlidp) for tests, on a loopback server with a fresh
// key.
//
// The IdP signs the Response and the assertion, and encrypts the assertion
// when the registered SP metadata has an encryption certificate. Login and
// IdPInitiated drive it like a browser would, but stop before posting the
// response to the SP: tests post it themselves, replay it or tamper with it.
package samltest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"testing"
	"time"

	crewidp "github.com/crewjam/saml/samlidp"
	"golang.org/x/net/html"

	"github.com/ssogate/ssogate/internal/idp/samlidp"
)

// Options tune the IdP.
type Options struct {
	// SignatureMethod, if set, replaces the IdP's signature algorithm
	// (for example dsig.RSASHA1SignatureMethod, to test that SHA-1 is
	// refused).
	SignatureMethod string
	// Logf receives the IdP's log lines; default: discarded.
	Logf func(format string, args ...any)
}

// IdP is a running samlidp server (internal/idp/samlidp).
type IdP struct {
	Server *crewidp.Server
	core   *samlidp.IdP
}

// Start runs an IdP until the test ends.
func Start(t testing.TB, opts Options) *IdP {
	t.Helper()
	core, err := samlidp.Start(samlidp.Options{SignatureMethod: opts.SignatureMethod, Logf: opts.Logf})
	if err != nil {
		t.Fatalf("samltest: %v", err)
	}
	t.Cleanup(func() { _ = core.Close() })
	return &IdP{Server: core.Server, core: core}
}

// URL is the IdP's base URL.
func (idp *IdP) URL() string { return idp.core.URL() }

// MetadataURL is where the IdP serves its metadata.
func (idp *IdP) MetadataURL() string { return idp.core.MetadataURL() }

// MetadataXML is the IdP's metadata as served at start.
func (idp *IdP) MetadataXML() []byte { return idp.core.MetadataXML() }

// MetadataXMLValidUntil is the IdP's metadata with its validUntil set to
// at (for tests of expired metadata).
func (idp *IdP) MetadataXMLValidUntil(t testing.TB, at time.Time) string {
	t.Helper()
	re := regexp.MustCompile(`validUntil="[^"]*"`)
	md := string(idp.MetadataXML())
	if !re.MatchString(md) {
		t.Fatalf("samltest: no validUntil in the IdP metadata:\n%s", md)
	}
	return re.ReplaceAllString(md, `validUntil="`+at.UTC().Format(time.RFC3339Nano)+`"`)
}

// RegisterSP trusts a service provider, given its metadata.
func (idp *IdP) RegisterSP(t testing.TB, spMetadataXML []byte) {
	t.Helper()
	if err := idp.core.RegisterSP(spMetadataXML); err != nil {
		t.Fatal(err)
	}
}

// AddUser creates (or replaces) a user whose NameID will be email, with
// the emailAddress format, and whose groups are sent as the
// eduPersonAffiliation attribute.
func (idp *IdP) AddUser(t testing.TB, name, password, email string, groups []string) {
	t.Helper()
	if err := idp.core.AddUser(samlidp.User{Name: name, Password: password, Email: email, Groups: groups}); err != nil {
		t.Fatal(err)
	}
}

// Login follows an SP's AuthnRequest redirect to the IdP, submits its login
// form with user and password, and returns the auto-POST form the IdP
// answers with: its action (the SP's ACS URL) and fields (SAMLResponse,
// RelayState). For a signed redirect it signs in at /login and follows the
// redirect again instead (see the comment inside).
func (idp *IdP) Login(t testing.TB, client *http.Client, redirectURL, user, password string) (acsURL string, form url.Values) {
	t.Helper()
	client = withJar(t, client)
	action, fields := getForm(t, client, redirectURL)
	if !fields.Has("password") {
		t.Fatalf("samltest: expected the IdP login form at %s, got fields %v", redirectURL, fields)
	}
	if u, err := url.Parse(redirectURL); err == nil && u.Query().Has("Signature") {
		// samlidp's login form posts the request back without the
		// HTTP-Redirect signature, which it then refuses; so sign in at
		// /login first and replay the signed redirect with the session.
		idp.signIn(t, client, user, password)
		acsURL, form = getForm(t, client, redirectURL)
	} else {
		fields.Set("user", user)
		fields.Set("password", password)
		acsURL, form = postForm(t, client, action, fields)
	}
	if !form.Has("SAMLResponse") {
		t.Fatalf("samltest: login as %q did not produce a SAMLResponse (fields %v)", user, form)
	}
	return acsURL, form
}

// IdPInitiated makes an unsolicited response for the SP spEntityID through
// a samlidp shortcut: it signs in at /login, then opens /login/{shortcut}.
// The IdP session lives in client's cookie jar (a copy with a jar is used
// when client has none).
func (idp *IdP) IdPInitiated(t testing.TB, client *http.Client, user, password, spEntityID string) (acsURL string, form url.Values) {
	t.Helper()
	client = withJar(t, client)
	name := fmt.Sprintf("shortcut%d", idp.core.NextID())
	if err := idp.core.PutShortcut(name, spEntityID); err != nil {
		t.Fatal(err)
	}

	idp.signIn(t, client, user, password)
	acsURL, form = getForm(t, client, idp.URL()+"/login/"+name)
	if !form.Has("SAMLResponse") {
		t.Fatalf("samltest: shortcut did not produce a SAMLResponse (fields %v)", form)
	}
	return acsURL, form
}

// signIn opens an IdP session (a cookie in client's jar) at /login.
func (idp *IdP) signIn(t testing.TB, client *http.Client, user, password string) {
	t.Helper()
	resp, err := client.PostForm(idp.URL()+"/login", url.Values{"user": {user}, "password": {password}})
	if err != nil {
		t.Fatalf("samltest: POST /login: %v", err)
	}
	session, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Success is the session as JSON; failure is the login form again.
	if err != nil || resp.StatusCode != http.StatusOK || !json.Valid(session) {
		t.Fatalf("samltest: POST /login as %q: status %d, %v", user, resp.StatusCode, err)
	}
}

// withJar returns client, or a copy with a cookie jar if it has none (the
// IdP keeps its session in a cookie).
func withJar(t testing.TB, client *http.Client) *http.Client {
	if client == nil {
		client = &http.Client{}
	}
	if client.Jar != nil {
		return client
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := *client
	c.Jar = jar
	return &c
}

func getForm(t testing.TB, client *http.Client, u string) (string, url.Values) {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatalf("samltest: GET %s: %v", u, err)
	}
	return readForm(t, resp, u)
}

func postForm(t testing.TB, client *http.Client, u string, v url.Values) (string, url.Values) {
	t.Helper()
	resp, err := client.PostForm(u, v)
	if err != nil {
		t.Fatalf("samltest: POST %s: %v", u, err)
	}
	return readForm(t, resp, u)
}

// readForm returns the action and the named inputs of the first form of an
// HTML page.
func readForm(t testing.TB, resp *http.Response, u string) (string, url.Values) {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("samltest: reading %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("samltest: %s: status %d: %s", u, resp.StatusCode, body)
	}
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("samltest: parsing %s: %v", u, err)
	}
	var action string
	var inForm bool
	fields := url.Values{}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "form" {
			if inForm || action != "" {
				return // first form only
			}
			inForm = true
			action = attr(n, "action")
			defer func() { inForm = false }()
		}
		if inForm && n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") != "" {
			fields.Set(attr(n, "name"), attr(n, "value"))
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if action == "" {
		t.Fatalf("samltest: no form in %s: %s", u, body)
	}
	base, _ := url.Parse(u)
	ref, err := base.Parse(action)
	if err != nil {
		t.Fatalf("samltest: form action %q: %v", action, err)
	}
	return ref.String(), fields
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

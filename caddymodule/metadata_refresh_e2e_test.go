package caddymodule_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/gatewaytest"
	"github.com/ssogate/ssogate/internal/samltest"
)

// TestIdPMetadataRefresh: a SAML connection made from a metadata URL picks
// up the IdP's new signing key by itself; a document for another IdP
// (another entity ID) or a failing URL leaves the stored metadata alone.
func TestIdPMetadataRefresh(t *testing.T) {
	t.Parallel()
	a := samltest.Start(t, samltest.Options{})
	b := samltest.Start(t, samltest.Options{})
	mdA := string(a.MetadataXML())
	certA := regexp.MustCompile(`X509Certificate>([^<]+)<`).FindStringSubmatch(mdA)
	if certA == nil {
		t.Fatal("the test IdP's metadata has no certificate")
	}
	// A's metadata after a key rotation: same entity ID, a new certificate.
	rotated := strings.ReplaceAll(mdA, certA[1], newCertBase64(t))

	var mu sync.Mutex
	serve, status := mdA, 200
	md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
		_, _ = w.Write([]byte(serve))
	}))
	t.Cleanup(md.Close)
	set := func(body string, code int) {
		mu.Lock()
		serve, status = body, code
		mu.Unlock()
	}

	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global("ssogate {\n\t\tallow_private_idps\n\t\tmetadata_refresh 200ms\n\t}")+siteBlock(up.URL), gatewaytest.Options{})
	api := apiClient{t, g.URL, signIn(t, g, "owner@acme.test", "acme", "owner", true).APIKey}
	code, conn := api.do("POST", "/connections", "application/json", `{"type":"saml","name":"IdP","metadata_url":"`+md.URL+`/metadata"}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, conn)
	}
	id := conn["id"].(string)
	stored := func() string {
		_, c := api.do("GET", "/connections/"+id, "", "")
		s, _ := c["metadata_xml"].(string)
		return s
	}
	if stored() != mdA {
		t.Fatal("the connection did not store the fetched metadata")
	}

	set(rotated, 200)
	deadline := time.Now().Add(10 * time.Second)
	for stored() != rotated {
		if time.Now().After(deadline) {
			t.Fatal("the rotated metadata was not picked up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ev := api.do("GET", "/audit-events?action=connection.metadata_refresh", "", ""); len(ev["events"].([]any)) == 0 {
		t.Fatal("no audit event for the refresh")
	}

	// Another IdP's metadata at the URL: refused, the rotated copy stays.
	set(string(b.MetadataXML()), 200)
	for !g.Logged("entity ID changed") {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatal("a metadata document for another entity ID was not refused")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A failing URL: the stored metadata keeps working.
	set("gone", 500)
	for !g.Logged("HTTP 500") {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatal("a failing metadata URL was not logged")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if stored() != rotated {
		t.Fatal("a refused refresh replaced the stored metadata")
	}
}

// newCertBase64 is a fresh self-signed certificate, base64 DER as in
// metadata.
func newCertBase64(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "rotated idp key"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

package saml

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/samltest"
	"github.com/ssogate/ssogate/store"
)

func newFromConn(t *testing.T, conn *store.Connection) (*Connector, error) {
	t.Helper()
	kp, err := testSPKey()
	if err != nil {
		t.Fatal(err)
	}
	return New(context.Background(), conn, SPConfig{EntityID: spEntityID, ACSURL: acsURL, Key: kp.key,
		Cert: kp.cert, Replay: failingReplayStore{}})
}

func TestParseMetadata(t *testing.T) {
	idp := samltest.Start(t, samltest.Options{})
	ed, err := ParseMetadata(idp.MetadataXML())
	if err != nil || ed.EntityID != idp.MetadataURL() {
		t.Fatalf("ParseMetadata(samlidp metadata) = %v, %v", ed, err)
	}
	spMD, err := setup(t, setupOpts{}).c.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	noCert := regexp.MustCompile(`(?s)<(?:md:)?KeyDescriptor.*</(?:md:)?KeyDescriptor>`).ReplaceAll(idp.MetadataXML(), nil)
	for name, raw := range map[string][]byte{
		"empty":             nil,
		"garbage":           []byte("this is not metadata"),
		"other XML":         []byte(`<html><body>login</body></html>`),
		"truncated":         idp.MetadataXML()[:200],
		"SP metadata":       spMD,
		"no signing cert":   noCert,
		"entity expansion":  []byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&a;"/>`),
		"larger than limit": append(bytes.Repeat([]byte(" "), MaxMetadataSize), idp.MetadataXML()...),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseMetadata(raw)
			if err == nil || !strings.HasPrefix(err.Error(), "IdP metadata: ") {
				t.Fatalf("ParseMetadata = %v, want an \"IdP metadata: …\" error", err)
			}
		})
	}
}

func TestNewFromMetadataXML(t *testing.T) {
	idp := samltest.Start(t, samltest.Options{})
	if _, err := newFromConn(t, &store.Connection{ID: "c1", IDPMetadataXML: string(idp.MetadataXML())}); err != nil {
		t.Fatalf("New from XML: %v", err)
	}
	// validUntil in the past: refused up front, not at every sign-in.
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	expired := regexp.MustCompile(`validUntil="[^"]*"`).ReplaceAllString(string(idp.MetadataXML()), `validUntil="`+past+`"`)
	_, err := newFromConn(t, &store.Connection{ID: "c1", IDPMetadataXML: expired})
	if err == nil || !strings.Contains(err.Error(), "IdP metadata: expired") {
		t.Fatalf("New with expired metadata = %v", err)
	}
	if _, err := newFromConn(t, &store.Connection{ID: "c1"}); err == nil || !strings.HasPrefix(err.Error(), "IdP metadata: ") {
		t.Fatalf("New without metadata = %v", err)
	}
}

func TestMetadataSizeLimit(t *testing.T) {
	big := append([]byte(`<?xml version="1.0"?><!--`), bytes.Repeat([]byte("x"), 2<<20)...)
	big = append(big, []byte(`-->`)...)
	for name, chunked := range map[string]bool{"with Content-Length": false, "chunked": true} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if chunked {
					w.(http.Flusher).Flush() // no Content-Length: the limit must hold while reading
				}
				_, _ = w.Write(big)
			}))
			defer srv.Close()
			_, err := newFromConn(t, &store.Connection{ID: "c1", IDPMetadataURL: srv.URL + "/metadata"})
			if err == nil || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
				t.Fatalf("New with 2 MiB metadata = %v", err)
			}
		})
	}
}

func TestMetadataFetchErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	for name, u := range map[string]string{
		"HTTP 404":   srv.URL + "/metadata",
		"not http":   "file:///etc/passwd",
		"not a URL":  "::",
		"no such IP": "http://127.0.0.1:1/metadata",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := newFromConn(t, &store.Connection{ID: "c1", IDPMetadataURL: u})
			if err == nil || !strings.HasPrefix(err.Error(), "IdP metadata: ") {
				t.Fatalf("New = %v", err)
			}
		})
	}
}

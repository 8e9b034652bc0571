package saml

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	crewsaml "github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"

	"github.com/ssogate/ssogate/store"
)

const (
	// MaxMetadataSize bounds the IdP metadata we read: one IdP's metadata
	// is a few KiB, while crewjam's default (256 MiB) is sized for
	// federation aggregates.
	MaxMetadataSize = 1 << 20
	// MetadataTimeout bounds fetching the IdP metadata.
	MetadataTimeout = 10 * time.Second
)

// ParseMetadata parses IdP metadata (an EntityDescriptor, or an
// EntitiesDescriptor holding exactly one IdP) and checks that it can be
// used: an entity ID, an HTTP-Redirect SingleSignOnService and a signing
// certificate. Errors start with "IdP metadata:" and are safe to show to
// the admin who supplied the document.
func ParseMetadata(raw []byte) (*crewsaml.EntityDescriptor, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, errors.New("IdP metadata: empty document")
	}
	if len(raw) > MaxMetadataSize {
		return nil, fmt.Errorf("IdP metadata: larger than %d bytes", MaxMetadataSize)
	}
	ed, err := samlsp.ParseMetadata(raw)
	if err != nil {
		return nil, fmt.Errorf("IdP metadata: not a SAML EntityDescriptor: %w", err)
	}
	if strings.TrimSpace(ed.EntityID) == "" {
		return nil, errors.New("IdP metadata: no entityID")
	}
	if len(ed.IDPSSODescriptors) == 0 {
		return nil, errors.New("IdP metadata: no IDPSSODescriptor (is this SP metadata?)")
	}
	if err := checkSSOService(ed); err != nil {
		return nil, err
	}
	if err := checkSigningCert(ed); err != nil {
		return nil, err
	}
	return ed, nil
}

func checkSSOService(ed *crewsaml.EntityDescriptor) error {
	for _, d := range ed.IDPSSODescriptors {
		for _, s := range d.SingleSignOnServices {
			if s.Binding != crewsaml.HTTPRedirectBinding {
				continue
			}
			u, err := url.Parse(s.Location)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return fmt.Errorf("IdP metadata: SingleSignOnService location %q is not an http(s) URL", s.Location)
			}
			return nil
		}
	}
	return errors.New("IdP metadata: no SingleSignOnService with the HTTP-Redirect binding")
}

func checkSigningCert(ed *crewsaml.EntityDescriptor) error {
	found := false
	for _, d := range ed.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
				if err != nil {
					return fmt.Errorf("IdP metadata: signing certificate is not base64: %w", err)
				}
				if _, err := x509.ParseCertificate(der); err != nil {
					return fmt.Errorf("IdP metadata: signing certificate: %w", err)
				}
				found = true
			}
		}
	}
	if !found {
		return errors.New("IdP metadata: no signing certificate")
	}
	return nil
}

// loadIDPMetadata uses the connection's pasted metadata, else fetches its
// metadata URL.
func loadIDPMetadata(ctx context.Context, conn *store.Connection, client *http.Client) (*crewsaml.EntityDescriptor, error) {
	if strings.TrimSpace(conn.IDPMetadataXML) != "" {
		return ParseMetadata([]byte(conn.IDPMetadataXML))
	}
	if conn.IDPMetadataURL == "" {
		return nil, errors.New("IdP metadata: the connection has neither metadata XML nor a metadata URL")
	}
	raw, err := fetchMetadata(ctx, client, conn.IDPMetadataURL)
	if err != nil {
		return nil, err
	}
	return ParseMetadata(raw)
}

// fetchMetadata GETs rawURL within MetadataTimeout and reads at most
// MaxMetadataSize bytes of a 2xx answer.
func fetchMetadata(ctx context.Context, client *http.Client, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("IdP metadata: URL %q is not an http(s) URL", rawURL)
	}
	if client == nil {
		client = &http.Client{Timeout: MetadataTimeout}
	}
	ctx, cancel := context.WithTimeout(ctx, MetadataTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("IdP metadata: %w", err)
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("IdP metadata: fetching %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("IdP metadata: fetching %s: HTTP status %d", u.Redacted(), resp.StatusCode)
	}
	if resp.ContentLength > MaxMetadataSize {
		return nil, fmt.Errorf("IdP metadata: %s is larger than %d bytes", u.Redacted(), MaxMetadataSize)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("IdP metadata: reading %s: %w", u.Redacted(), err)
	}
	if len(raw) > MaxMetadataSize {
		return nil, fmt.Errorf("IdP metadata: %s is larger than %d bytes", u.Redacted(), MaxMetadataSize)
	}
	return raw, nil
}

// CheckRefresh checks a newly fetched copy of a connection's IdP metadata
// before it replaces the stored one: usable (ParseMetadata), not expired
// at now, and for the same IdP (the entity ID of old). A different entity
// ID is refused: accounts are linked to the IdP's entity ID, so that
// change is an admin's decision, not a background refresh's.
func CheckRefresh(old, fresh []byte, now time.Time) error {
	ed, err := ParseMetadata(fresh)
	if err != nil {
		return err
	}
	if err := checkNotExpired(metadataExpiry(ed), now); err != nil {
		return err
	}
	prev, err := ParseMetadata(old)
	if err == nil && prev.EntityID != ed.EntityID {
		return fmt.Errorf("IdP metadata: entity ID changed from %q to %q; update the connection by hand", prev.EntityID, ed.EntityID)
	}
	return nil
}

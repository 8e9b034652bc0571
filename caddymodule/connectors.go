package caddymodule

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"sync"

	"github.com/ssogate/ssogate/connector"
	oidcconn "github.com/ssogate/ssogate/connector/oidc"
	samlconn "github.com/ssogate/ssogate/connector/saml"
	"github.com/ssogate/ssogate/store"
)

// connectorCache keeps built connectors per connection, rebuilt when the
// connection record changes (on this or another instance).
type connectorCache struct {
	mu sync.Mutex
	m  map[string]cachedConnector
}

type cachedConnector struct {
	fingerprint [32]byte
	c           connector.Connector
}

func fingerprint(c *store.Connection) [32]byte {
	raw, _ := json.Marshal(c)
	h := sha256.New()
	h.Write(raw)
	h.Write([]byte(c.ClientSecret))
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// URLs the IdP admin pastes, all built from site_url.
func (h *Handler) acsURL(id string) string { return h.origin + h.BasePath + "/saml/" + id + "/acs" }
func (h *Handler) spEntityID(id string) string {
	return h.origin + h.BasePath + "/saml/" + id + "/metadata"
}
func (h *Handler) redirectURI(id string) string {
	return h.origin + h.BasePath + "/oidc/" + id + "/callback"
}
func (h *Handler) tileURL() string { return h.origin + h.BasePath + "/login?sso=true" }

// connector returns the connector for conn, building it when needed.
func (h *Handler) connector(r *http.Request, conn *store.Connection) (connector.Connector, error) {
	return h.conns.get(conn, func() (connector.Connector, error) { return h.buildConnector(r.Context(), conn) })
}

// get returns the cached connector for conn, or builds and caches one.
func (cc *connectorCache) get(conn *store.Connection, build func() (connector.Connector, error)) (connector.Connector, error) {
	fp := fingerprint(conn)
	cc.mu.Lock()
	cached, ok := cc.m[conn.ID]
	cc.mu.Unlock()
	if ok && cached.fingerprint == fp {
		return cached.c, nil
	}
	c, err := build()
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	if cc.m == nil {
		cc.m = map[string]cachedConnector{}
	}
	cc.m[conn.ID] = cachedConnector{fingerprint: fp, c: c}
	cc.mu.Unlock()
	return c, nil
}

func (h *Handler) buildConnector(ctx context.Context, conn *store.Connection) (connector.Connector, error) {
	switch conn.Type {
	case store.ConnSAML:
		return h.samlConnector(ctx, conn)
	case store.ConnOIDC:
		c, err := oidcconn.New(ctx, conn, oidcconn.Config{RedirectURL: h.redirectURI(conn.ID), HTTPClient: h.app.idpClient,
			HostedDomain: conn.HostedDomain, GroupsClaim: conn.GroupAttribute})
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	return nil, fmt.Errorf("%w: unknown type %q", errNoConnector, conn.Type)
}

func (h *Handler) samlConnector(ctx context.Context, conn *store.Connection) (*samlconn.Connector, error) {
	key, cert, err := h.app.spKey(ctx)
	if err != nil {
		return nil, err
	}
	return samlconn.New(ctx, conn, samlconn.SPConfig{EntityID: h.spEntityID(conn.ID), ACSURL: h.acsURL(conn.ID),
		MetadataURL: h.spEntityID(conn.ID), Key: key, Cert: cert, HTTPClient: h.app.idpClient, Replay: h.app.store})
}

// spKey is the SAML SP key pair, generated once and kept in the store so
// every instance signs and decrypts with the same key.
func (a *App) spKey(ctx context.Context) (*rsa.PrivateKey, *x509.Certificate, error) {
	a.sp.mu.Lock()
	defer a.sp.mu.Unlock()
	if a.sp.priv != nil {
		return a.sp.priv, a.sp.cert, nil
	}
	raw, err := a.store.UpdateSetting(ctx, "saml-sp-key", func(old []byte, exists bool) ([]byte, error) {
		if exists {
			return old, nil
		}
		k, c, err := samlconn.NewSPKey()
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		return append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...), nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ssogate: loading the SAML SP key: %w", err)
	}
	var key *rsa.PrivateKey
	var cert *x509.Certificate
	for block, rest := pem.Decode(raw); block != nil; block, rest = pem.Decode(rest) {
		switch block.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("ssogate: parsing the SAML SP key: %w", err)
			}
			key, _ = k.(*rsa.PrivateKey)
		case "CERTIFICATE":
			if cert, err = x509.ParseCertificate(block.Bytes); err != nil {
				return nil, nil, fmt.Errorf("ssogate: parsing the SAML SP certificate: %w", err)
			}
		}
	}
	if key == nil || cert == nil {
		return nil, nil, fmt.Errorf("ssogate: the stored SAML SP key is incomplete")
	}
	a.sp.priv, a.sp.cert = key, cert
	return key, cert, nil
}

// serveSPMetadata serves the SP metadata an IdP can import.
func (h *Handler) serveSPMetadata(w http.ResponseWriter, r *http.Request) {
	conn, err := h.app.store.GetConnection(r.Context(), r.PathValue("connection"))
	if err != nil || conn.Type != store.ConnSAML {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such SAML connection")
		return
	}
	c, err := h.samlConnector(r.Context(), conn)
	if err != nil {
		writeJSONError(w, http.StatusBadGateway, "connector_error", "the connection's IdP metadata could not be used")
		return
	}
	md, err := c.Metadata()
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "internal", "could not build SP metadata")
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(md)
}

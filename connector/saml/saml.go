// Package saml is the SAML 2.0 connector: SP-initiated Web Browser SSO with
// the HTTP-Redirect binding out and the HTTP-POST binding back, verified by
// crewjam/saml.
//
// crewjam checks signatures (and refuses XSW, comment injection and
// signature stripping), audience, recipient, destination, issuer and time
// windows. This package adds what it leaves to the caller: the request IDs
// a response may answer (IdP-initiated responses are refused), a replay
// cache shared through the store and keyed per connection, every opt-in
// hardening switch, and a small, bounded metadata fetch. Refusals carry a
// stable reason; the library's private cause stays in the wrapped error for
// logs only.
package saml

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"time"

	crewsaml "github.com/crewjam/saml"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/ssogate/ssogate/connector"
	"github.com/ssogate/ssogate/store"
)

// ReplayStore remembers the assertions a connection accepted. store.Store
// implements it and returns store.ErrAlreadyExists for a replay.
type ReplayStore interface {
	RememberAssertion(ctx context.Context, connectionID, assertionID string, notOnOrAfter time.Time) error
}

// SPConfig is the gateway side of a SAML connection. Build the URLs from
// configuration, never from the request's Host.
type SPConfig struct {
	// EntityID is the SP entity ID, the audience assertions must name.
	EntityID string
	// ACSURL is where the IdP posts its response.
	ACSURL string
	// MetadataURL is where the SP metadata is served.
	MetadataURL string
	// Key signs AuthnRequests (when the connection says so) and decrypts
	// assertions; Cert is its certificate, published in the SP metadata.
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
	// HTTPClient fetches the IdP metadata. Default: a client with a 10 s
	// timeout. The fetch is bounded by MetadataTimeout either way.
	HTTPClient *http.Client
	// Clock is used for every time check. Default: time.Now.
	Clock func() time.Time
	// Replay is required: without it a captured response is accepted
	// again until it expires.
	Replay ReplayStore
}

// Connector is one SAML connection. It is safe for concurrent use.
type Connector struct {
	connID string
	conn   store.Connection // email and group attribute names
	replay ReplayStore
	sp     crewsaml.ServiceProvider // a template: Finish works on a copy
	now    func() time.Time
	// expires is when the IdP metadata stops being valid (the earliest
	// validUntil of the entity and its IDPSSODescriptors; zero: never).
	expires time.Time
}

var _ connector.Connector = (*Connector)(nil)

// New builds the connector for conn, from its pasted metadata XML or by
// fetching its metadata URL.
func New(ctx context.Context, conn *store.Connection, cfg SPConfig) (*Connector, error) {
	if conn == nil || conn.ID == "" {
		return nil, errors.New("saml connector: connection without ID")
	}
	if cfg.Key == nil || cfg.Cert == nil {
		return nil, errors.New("saml connector: SP key and certificate are required")
	}
	if cfg.Replay == nil {
		return nil, errors.New("saml connector: a replay store is required")
	}
	acs, err := absoluteURL("ACS URL", cfg.ACSURL)
	if err != nil {
		return nil, err
	}
	var metadataURL url.URL
	if cfg.MetadataURL != "" {
		u, err := absoluteURL("metadata URL", cfg.MetadataURL)
		if err != nil {
			return nil, err
		}
		metadataURL = *u
	}
	if cfg.EntityID == "" {
		return nil, errors.New("saml connector: SP entity ID is required")
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}

	idp, err := loadIDPMetadata(ctx, conn, cfg.HTTPClient)
	if err != nil {
		return nil, err
	}
	// Refuse expired metadata now, with a clear message, rather than at
	// every sign-in (where RejectExpiredIDPMetadata refuses it too).
	expires := metadataExpiry(idp)
	if err := checkNotExpired(expires, now()); err != nil {
		return nil, err
	}

	c := &Connector{connID: conn.ID, conn: *conn, replay: cfg.Replay, now: now, expires: expires}
	c.sp = crewsaml.ServiceProvider{
		EntityID:    cfg.EntityID,
		Key:         cfg.Key,
		Certificate: cfg.Cert,
		MetadataURL: metadataURL,
		AcsURL:      *acs,
		IDPMetadata: idp,
		Clock:       dsig.NewFakeClock(funcClock{Clock: clockwork.NewRealClock(), now: now}),
		// Let the IdP choose its configured NameID format: crewjam asks
		// for transient by default, a new random subject at every sign-in,
		// which breaks keying accounts on (issuer, subject).
		AuthnNameIDFormat:                crewsaml.UnspecifiedNameIDFormat,
		AssertionConsumerServiceBindings: []string{crewsaml.HTTPPostBinding},
		AllowIDPInitiated:                false,
		// Opt-in hardening (all of it that v0.6.3 has).
		RejectSHA1Signatures:        true,
		RejectUnknownConditions:     true,
		RequireSignedResponseForCBC: true,
		RejectExpiredIDPMetadata:    true,
		LimitRelayStateLength:       true,
		RequireStandardArtifacts:    true,
	}
	if conn.SignRequests {
		c.sp.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	return c, nil
}

// ReasonMetadataExpired is the refusal reason when the IdP metadata's
// validUntil has passed: an admin must supply a fresh copy.
const ReasonMetadataExpired = "idp_metadata_expired"

// metadataExpiry is the earliest validUntil of the entity (which samlsp
// already narrowed to that of enclosing aggregates) and of its
// IDPSSODescriptors, the elements crewjam takes signing keys from; zero
// when none is set.
func metadataExpiry(ed *crewsaml.EntityDescriptor) time.Time {
	at := ed.ValidUntil
	for _, d := range ed.IDPSSODescriptors {
		if d.ValidUntil != nil && !d.ValidUntil.IsZero() && (at.IsZero() || d.ValidUntil.Before(at)) {
			at = *d.ValidUntil
		}
	}
	return at
}

// ErrMetadataExpired is wrapped by every error about expired IdP metadata.
var ErrMetadataExpired = errors.New("IdP metadata: expired")

// checkNotExpired returns an "IdP metadata: expired …" error once expires
// (non-zero) is reached.
func checkNotExpired(expires, now time.Time) error {
	if !expires.IsZero() && !now.Before(expires) {
		return fmt.Errorf("%w at %s; fetch a fresh copy from the IdP and update the connection",
			ErrMetadataExpired, expires.UTC().Format(time.RFC3339))
	}
	return nil
}

func absoluteURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("saml connector: %s %q is not an absolute URL", what, raw)
	}
	return u, nil
}

// Begin makes an AuthnRequest for the IdP's HTTP-Redirect SSO endpoint,
// with state as RelayState (signed when the connection signs requests).
// SAML has no standard login hint, so loginHint is not sent.
func (c *Connector) Begin(ctx context.Context, state, loginHint string) (*connector.Begun, error) {
	if state == "" {
		return nil, errors.New("saml connector: empty state")
	}
	// Metadata that was valid when the connector was built may have
	// expired since: do not send anyone to an IdP whose answer would be
	// refused (RejectExpiredIDPMetadata) after they signed in there.
	if err := checkNotExpired(c.expires, c.now()); err != nil {
		return nil, connector.Refuse(ReasonMetadataExpired, err)
	}
	sp := &c.sp
	req, err := sp.MakeAuthenticationRequest(sp.GetSSOBindingLocation(crewsaml.HTTPRedirectBinding),
		crewsaml.HTTPRedirectBinding, crewsaml.HTTPPostBinding)
	if err != nil {
		return nil, fmt.Errorf("saml connector: making AuthnRequest: %w", err)
	}
	u, err := req.Redirect(state, sp)
	if err != nil {
		return nil, fmt.Errorf("saml connector: encoding AuthnRequest: %w", err)
	}
	return &connector.Begun{RedirectURL: u.String(), RequestID: req.ID}, nil
}

// Metadata returns the SP metadata XML for the IdP admin: entity ID, the
// ACS URL with the HTTP-POST binding, and the certificate for signing and
// encryption.
func (c *Connector) Metadata() ([]byte, error) {
	md := c.sp.Metadata()
	for i := range md.SPSSODescriptors {
		d := &md.SPSSODescriptors[i]
		signing := false
		for _, kd := range d.KeyDescriptors {
			signing = signing || kd.Use == "signing"
		}
		// crewjam publishes the signing certificate only when requests are
		// signed; publish it always, so turning signing on later needs no
		// metadata change at the IdP.
		if !signing {
			d.KeyDescriptors = append(d.KeyDescriptors, crewsaml.KeyDescriptor{
				Use: "signing",
				KeyInfo: crewsaml.KeyInfo{X509Data: crewsaml.X509Data{X509Certificates: []crewsaml.X509Certificate{
					{Data: base64.StdEncoding.EncodeToString(c.sp.Certificate.Raw)},
				}}},
			})
		}
	}
	raw, err := xml.MarshalIndent(md, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("saml connector: encoding SP metadata: %w", err)
	}
	return append([]byte(xml.Header), raw...), nil
}

// NewSPKey makes a 2048-bit RSA key and a self-signed certificate valid for
// ten years, for the gateway to persist and share between instances.
func NewSPKey() (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("saml connector: generating SP key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("saml connector: generating serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "ssogate SAML SP"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("saml connector: creating SP certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("saml connector: parsing SP certificate: %w", err)
	}
	return key, cert, nil
}

// funcClock is a clockwork clock whose Now is SPConfig.Clock; crewjam reads
// the time (checks and certificate validity) only through Now.
type funcClock struct {
	clockwork.Clock
	now func() time.Time
}

func (c funcClock) Now() time.Time { return c.now() }

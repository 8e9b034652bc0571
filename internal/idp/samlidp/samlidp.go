// Package samlidp runs a real SAML identity provider — crewjam's samlidp —
// on a loopback HTTP server with a fresh key: the IdP of `ssogate demo`,
// and, through internal/samltest, of the tests.
//
// The IdP signs the Response and the assertion, and encrypts the assertion
// when the registered SP metadata has an encryption certificate. People
// sign in with samlidp's own login form (user and password); their groups
// are sent as the eduPersonAffiliation attribute.
//
// samlidp's administrative endpoints (/services, /users, /sessions,
// /shortcuts) need no authentication: anyone who can reach the port can
// change the IdP. They refuse cross-origin browser requests, and the
// server listens on loopback only; do not expose it.
package samlidp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crewjam/saml"
	crewidp "github.com/crewjam/saml/samlidp"
)

// Options tune the IdP.
type Options struct {
	// Listener to serve on; default a new one on 127.0.0.1:0.
	Listener net.Listener
	// SignatureMethod, if set, replaces the IdP's signature algorithm
	// (for example dsig.RSASHA1SignatureMethod, to test that SHA-1 is
	// refused).
	SignatureMethod string
	// Logf receives the IdP's log lines; default: discarded.
	Logf func(format string, args ...any)
	// TrustSPsUnder, if set, is a URL prefix: a service provider whose
	// entity ID starts with it (and is its metadata URL, as ssogate's
	// are) is trusted the first time it sends a request, by fetching its
	// metadata from the entity ID. The demo uses it so that an SSO
	// connection works without pasting the gateway's metadata into the
	// IdP. Only prefixes of a server you run belong here.
	TrustSPsUnder string
}

// User is an account at the IdP. Name is what people type to sign in.
type User struct {
	Name      string
	Password  string
	Email     string // sent as the NameID (emailAddress format)
	GivenName string
	Surname   string
	Groups    []string // sent as eduPersonAffiliation
}

// IdP is a running samlidp server.
type IdP struct {
	// Server is crewjam's IdP; its handler serves every request.
	Server *crewidp.Server

	srv      *http.Server
	url      string
	md       []byte
	seq      atomic.Int64
	trust    string
	client   *http.Client
	trustMu  sync.Mutex
	serveErr chan error
}

// Start runs an IdP until Close.
func Start(opts Options) (*IdP, error) {
	key, cert, err := newKeyPair()
	if err != nil {
		return nil, fmt.Errorf("samlidp: key: %w", err)
	}
	l := opts.Listener
	if l == nil {
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("samlidp: listening: %w", err)
		}
	}
	base, err := url.Parse("http://" + l.Addr().String())
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("samlidp: %w", err)
	}
	out := io.Discard
	if opts.Logf != nil {
		out = logfWriter(opts.Logf)
	}
	s, err := crewidp.New(crewidp.Options{
		URL:         *base,
		Key:         key,
		Certificate: cert,
		Store:       &crewidp.MemoryStore{},
		Logger:      log.New(out, "samlidp: ", 0),
		// The administrative endpoints are for scripts and the demo's
		// walkthrough, never for a page in a browser.
		AdminMiddleware: http.NewCrossOriginProtection().Handler,
	})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("samlidp: starting: %w", err)
	}
	if opts.SignatureMethod != "" {
		s.IDP.SignatureMethod = opts.SignatureMethod
	}
	idp := &IdP{Server: s, url: base.String(), trust: opts.TrustSPsUnder,
		client: &http.Client{Timeout: 10 * time.Second}, serveErr: make(chan error, 1)}
	if idp.trust != "" {
		s.IDP.ServiceProviderProvider = trustOnFirstUse{idp}
	}
	idp.srv = &http.Server{Handler: idp.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { idp.serveErr <- idp.srv.Serve(l) }()

	md, err := idp.get(idp.MetadataURL())
	if err != nil {
		idp.Close()
		return nil, fmt.Errorf("samlidp: fetching IdP metadata: %w", err)
	}
	idp.md = md
	return idp, nil
}

// handler is samlidp's, except that deleting a user also ends the user's
// IdP sessions (samlidp keeps the user's data in the session, so a deleted
// user could otherwise still sign in for an hour).
func (idp *IdP) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", idp.Server)
	mux.Handle("DELETE /users/{id}", idp.Server.AdminMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := idp.RemoveUser(r.PathValue("id")); err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, crewidp.ErrNotFound) {
				status = http.StatusNotFound
			}
			http.Error(w, http.StatusText(status), status)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})))
	return mux
}

// Close stops the server.
func (idp *IdP) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := idp.srv.Shutdown(ctx)
	if err != nil {
		_ = idp.srv.Close()
	}
	if serr := <-idp.serveErr; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// URL is the IdP's base URL.
func (idp *IdP) URL() string { return idp.url }

// MetadataURL is where the IdP serves its metadata.
func (idp *IdP) MetadataURL() string { return idp.url + "/metadata" }

// MetadataXML is the IdP's metadata as served at start.
func (idp *IdP) MetadataXML() []byte { return bytes.Clone(idp.md) }

// RegisterSP trusts a service provider, given its metadata.
func (idp *IdP) RegisterSP(spMetadataXML []byte) error {
	id := fmt.Sprintf("sp%d", idp.seq.Add(1))
	return idp.put("/services/"+id, spMetadataXML)
}

// AddUser creates (or replaces) a user.
func (idp *IdP) AddUser(u User) error {
	body, err := json.Marshal(crewidp.User{Name: u.Name, PlaintextPassword: &u.Password, Email: u.Email,
		GivenName: u.GivenName, Surname: u.Surname, CommonName: strings.TrimSpace(u.GivenName + " " + u.Surname), Groups: u.Groups})
	if err != nil {
		return fmt.Errorf("samlidp: %w", err)
	}
	return idp.put("/users/"+url.PathEscape(u.Name), body)
}

// RemoveUser deletes a user and ends the user's IdP sessions, so the
// next sign-in as them fails.
func (idp *IdP) RemoveUser(name string) error {
	st := idp.Server.Store
	var u crewidp.User
	if err := st.Get("/users/"+name, &u); err != nil {
		return fmt.Errorf("samlidp: removing %s: %w", name, err)
	}
	if err := st.Delete("/users/" + name); err != nil {
		return fmt.Errorf("samlidp: removing %s: %w", name, err)
	}
	ids, err := st.List("/sessions/")
	if err != nil {
		return fmt.Errorf("samlidp: listing sessions: %w", err)
	}
	for _, id := range ids {
		var sess saml.Session
		if err := st.Get("/sessions/"+id, &sess); err != nil || sess.UserName != name {
			continue
		}
		if err := st.Delete("/sessions/" + id); err != nil && !errors.Is(err, crewidp.ErrNotFound) {
			return fmt.Errorf("samlidp: ending a session of %s: %w", name, err)
		}
	}
	return nil
}

// PutShortcut creates an IdP-initiated sign-in shortcut for the SP with
// entity ID spEntityID, opened at /login/{name}.
func (idp *IdP) PutShortcut(name, spEntityID string) error {
	body, err := json.Marshal(map[string]any{"service_provider": spEntityID})
	if err != nil {
		return fmt.Errorf("samlidp: %w", err)
	}
	return idp.put("/shortcuts/"+url.PathEscape(name), body)
}

// NextID returns a fresh number for names (shortcuts, services).
func (idp *IdP) NextID() int64 { return idp.seq.Add(1) }

func (idp *IdP) put(path string, body []byte) error {
	req, err := http.NewRequest(http.MethodPut, idp.url+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("samlidp: PUT %s: %w", path, err)
	}
	resp, err := idp.client.Do(req)
	if err != nil {
		return fmt.Errorf("samlidp: PUT %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("samlidp: PUT %s: status %d: %s", path, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

func (idp *IdP) get(u string) ([]byte, error) {
	resp, err := idp.client.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	return body, nil
}

// trustOnFirstUse registers SPs under the trusted prefix from their
// metadata URL the first time the IdP is asked about them.
type trustOnFirstUse struct{ idp *IdP }

func (t trustOnFirstUse) GetServiceProvider(r *http.Request, id string) (*saml.EntityDescriptor, error) {
	ed, err := t.idp.Server.GetServiceProvider(r, id)
	if err == nil || !strings.HasPrefix(id, t.idp.trust) || strings.Contains(id[len(t.idp.trust):], "..") {
		return ed, err
	}
	t.idp.trustMu.Lock()
	defer t.idp.trustMu.Unlock()
	if ed, err := t.idp.Server.GetServiceProvider(r, id); err == nil {
		return ed, nil // registered meanwhile
	}
	md, ferr := t.idp.get(id)
	if ferr != nil {
		t.idp.Server.IDP.Logger.Printf("ERROR: fetching the metadata of %s: %s", id, ferr)
		return nil, err
	}
	if perr := t.idp.RegisterSP(md); perr != nil {
		t.idp.Server.IDP.Logger.Printf("ERROR: registering %s: %s", id, perr)
		return nil, err
	}
	return t.idp.Server.GetServiceProvider(r, id)
}

func newKeyPair() (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "ssogate samlidp"},
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// logfWriter sends each write to a Printf-like function.
type logfWriter func(format string, args ...any)

func (f logfWriter) Write(p []byte) (int, error) {
	f("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

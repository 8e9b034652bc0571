package saml

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	crewsaml "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/ssogate/ssogate/connector"
	"github.com/ssogate/ssogate/internal/samltest"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/bolt"
)

const (
	spEntityID = "https://gw.example/saml/c1/metadata"
	acsURL     = "https://gw.example/saml/c1/acs"
	state      = "state-0123456789"
)

type keyPair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// testSPKey is made once: RSA key generation is slow under -race.
var testSPKey = sync.OnceValues(func() (keyPair, error) {
	k, c, err := NewSPKey()
	return keyPair{k, c}, err
})

func newStore(t *testing.T) *store.Store {
	t.Helper()
	b, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(b)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// fixture is one IdP, one connection to it and the gateway side.
type fixture struct {
	idp    *samltest.IdP
	conn   *store.Connection
	cfg    SPConfig
	c      *Connector
	offset atomic.Int64 // added to the SP clock
}

type setupOpts struct {
	idp       samltest.Options
	plaintext bool // register SP metadata without its encryption key
	edit      func(*store.Connection, *SPConfig)
	// spMetadata, if set, rewrites the SP metadata the IdP registers.
	spMetadata func(*testing.T, []byte) []byte
}

func setup(t *testing.T, o setupOpts) *fixture {
	t.Helper()
	kp, err := testSPKey()
	if err != nil {
		t.Fatal(err)
	}
	if o.idp.Logf == nil {
		o.idp.Logf = t.Logf // shown only when the test fails
	}
	f := &fixture{idp: samltest.Start(t, o.idp)}
	f.conn = &store.Connection{ID: "c1", Type: store.ConnSAML, IDPMetadataURL: f.idp.MetadataURL(),
		GroupAttribute: "eduPersonAffiliation"}
	f.cfg = SPConfig{EntityID: spEntityID, ACSURL: acsURL, MetadataURL: spEntityID, Key: kp.key, Cert: kp.cert,
		Clock: func() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) }, Replay: newStore(t)}
	if o.edit != nil {
		o.edit(f.conn, &f.cfg)
	}
	f.c = f.connector(t, f.cfg)
	md, err := f.c.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	if o.plaintext {
		md = withoutEncryptionKey(t, md)
	}
	if o.spMetadata != nil {
		md = o.spMetadata(t, md)
	}
	f.idp.RegisterSP(t, md)
	f.idp.AddUser(t, "alice", "pw", "alice@example.com", []string{"eng", "admins"})
	return f
}

func (f *fixture) connector(t *testing.T, cfg SPConfig) *Connector {
	t.Helper()
	c, err := New(context.Background(), f.conn, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// login runs Begin and the IdP login, returning what Begin kept and the
// form the browser would post to the ACS.
func (f *fixture) login(t *testing.T) (*connector.Begun, url.Values) {
	t.Helper()
	begun, err := f.c.Begin(context.Background(), state, "")
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	action, form := f.idp.Login(t, nil, begun.RedirectURL, "alice", "pw")
	if action != acsURL || form.Get("RelayState") != state {
		t.Fatalf("IdP posts to %s with RelayState %q", action, form.Get("RelayState"))
	}
	return begun, form
}

func acsPost(form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, acsURL, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func finish(c *Connector, begun *connector.Begun, form url.Values) (*connector.Identity, error) {
	return c.Finish(context.Background(), acsPost(form), begun)
}

func wantRefusal(t *testing.T, id *connector.Identity, err error, reason string) {
	t.Helper()
	if err == nil || id != nil {
		t.Fatalf("accepted (identity %+v), want refusal %q", id, reason)
	}
	var ce *connector.Error
	if !errors.As(err, &ce) || ce.Reason != reason {
		t.Fatalf("refused with %q (%v), want %q", connector.Reason(err), err, reason)
	}
}

func TestSignIn(t *testing.T) {
	for _, sign := range []bool{false, true} {
		t.Run(map[bool]string{false: "unsigned request", true: "signed request"}[sign], func(t *testing.T) {
			f := setup(t, setupOpts{edit: func(c *store.Connection, _ *SPConfig) { c.SignRequests = sign }})
			begun, form := f.login(t)
			u, _ := url.Parse(begun.RedirectURL)
			if got := u.Query().Get("SigAlg"); sign != (got == dsig.RSASHA256SignatureMethod) {
				t.Fatalf("SigAlg = %q with SignRequests %v", got, sign)
			}
			id, err := finish(f.c, begun, form)
			if err != nil {
				t.Fatalf("Finish: %v", err)
			}
			if id.Issuer != f.idp.MetadataURL() || id.Subject != "alice@example.com" ||
				id.Email != "alice@example.com" || !id.EmailVerified {
				t.Fatalf("identity = %+v", id)
			}
			if strings.Join(id.Groups, ",") != "eng,admins" || id.GroupsOverage {
				t.Fatalf("groups = %v (overage %v)", id.Groups, id.GroupsOverage)
			}
			if id.Attributes["urn:oid:0.9.2342.19200300.100.1.1"] != "alice" { // uid
				t.Fatalf("attributes = %v", id.Attributes)
			}
		})
	}
}

func TestReplayRefused(t *testing.T) {
	f := setup(t, setupOpts{})
	begun, form := f.login(t)
	if _, err := finish(f.c, begun, form); err != nil {
		t.Fatalf("first Finish: %v", err)
	}
	id, err := finish(f.c, begun, form)
	wantRefusal(t, id, err, "replay")
	// Another connector instance over the same store refuses it too.
	id, err = finish(f.connector(t, f.cfg), begun, form)
	wantRefusal(t, id, err, "replay")
}

func TestOtherRequestRefused(t *testing.T) {
	f := setup(t, setupOpts{})
	_, form := f.login(t)
	other, err := f.c.Begin(context.Background(), state, "")
	if err != nil {
		t.Fatal(err)
	}
	id, err := finish(f.c, other, form)
	wantRefusal(t, id, err, "in_response_to")
}

func TestUnsolicitedRefused(t *testing.T) {
	f := setup(t, setupOpts{})
	pending, err := f.c.Begin(context.Background(), state, "")
	if err != nil {
		t.Fatal(err)
	}
	for name, begun := range map[string]*connector.Begun{
		"no request pending":    {},
		"nil begun":             nil,
		"unrelated request":     pending,
		"made-up request ID":    {RequestID: "id-0000"},
		"empty-looking request": {RequestID: " "},
	} {
		t.Run(name, func(t *testing.T) {
			action, form := f.idp.IdPInitiated(t, nil, "alice", "pw", spEntityID)
			if action != acsURL {
				t.Fatalf("IdP posts to %s", action)
			}
			id, err := finish(f.c, begun, form)
			wantRefusal(t, id, err, "unsolicited")
		})
	}
}

var nameIDValue = regexp.MustCompile(`(<(?:saml:)?NameID[^>]*>)([^<])`)

func TestTamperedRefused(t *testing.T) {
	t.Run("NameID in a plaintext assertion", func(t *testing.T) {
		f := setup(t, setupOpts{plaintext: true})
		begun, form := f.login(t)
		form.Set("SAMLResponse", tamper(t, form.Get("SAMLResponse"), func(doc string) string {
			if !nameIDValue.MatchString(doc) {
				t.Fatalf("no plaintext NameID in %s", doc)
			}
			return nameIDValue.ReplaceAllString(doc, "${1}X") // alice@… → Xlice@…
		}))
		id, err := finish(f.c, begun, form)
		wantRefusal(t, id, err, "signature")
	})
	t.Run("ciphertext of an encrypted assertion", func(t *testing.T) {
		f := setup(t, setupOpts{})
		begun, form := f.login(t)
		cipher := regexp.MustCompile(`(<(?:xenc:)?CipherValue>)([A-Za-z0-9+/])`)
		form.Set("SAMLResponse", tamper(t, form.Get("SAMLResponse"), func(doc string) string {
			if !cipher.MatchString(doc) {
				t.Fatalf("no CipherValue in %s", doc)
			}
			return cipher.ReplaceAllStringFunc(doc, func(m string) string {
				last := m[len(m)-1]
				return m[:len(m)-1] + map[bool]string{true: "B", false: "A"}[last == 'A']
			})
		}))
		id, err := finish(f.c, begun, form)
		wantRefusal(t, id, err, "signature")
	})
}

func tamper(t *testing.T, b64 string, edit func(string) string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	out := edit(string(raw))
	if out == string(raw) {
		t.Fatal("tampering changed nothing")
	}
	return base64.StdEncoding.EncodeToString([]byte(out))
}

func TestExpiredRefused(t *testing.T) {
	f := setup(t, setupOpts{})
	begun, form := f.login(t)
	f.offset.Store(int64(time.Hour))
	id, err := finish(f.c, begun, form)
	wantRefusal(t, id, err, "expired")
}

func TestWrongAudienceRefused(t *testing.T) {
	f := setup(t, setupOpts{})
	begun, form := f.login(t)
	cfg := f.cfg
	cfg.EntityID = "https://other.example/saml/metadata"
	id, err := finish(f.connector(t, cfg), begun, form)
	wantRefusal(t, id, err, "audience")
}

func TestSHA1SignatureRefused(t *testing.T) {
	f := setup(t, setupOpts{idp: samltest.Options{SignatureMethod: dsig.RSASHA1SignatureMethod}})
	begun, form := f.login(t)
	id, err := finish(f.c, begun, form)
	wantRefusal(t, id, err, "signature")
}

type failingReplayStore struct{ err error }

func (s failingReplayStore) RememberAssertion(context.Context, string, string, time.Time) error {
	return s.err
}

func TestReplayStoreErrorRefuses(t *testing.T) {
	boom := errors.New("backend unavailable")
	f := setup(t, setupOpts{edit: func(_ *store.Connection, cfg *SPConfig) {
		cfg.Replay = failingReplayStore{err: boom}
	}})
	begun, form := f.login(t)
	id, err := finish(f.c, begun, form)
	if err == nil || id != nil {
		t.Fatalf("accepted with a failing replay store: %+v", id)
	}
	if !errors.Is(err, boom) || connector.Reason(err) == "replay" {
		t.Fatalf("error = %v (reason %q), want the store error, not a replay", err, connector.Reason(err))
	}
}

func TestReplayKeyedPerConnection(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	a := replayCache{ctx: ctx, connID: "c1", store: st}
	b := replayCache{ctx: ctx, connID: "c2", store: st}
	if err := a.Consume("id-1", deadline); err != nil {
		t.Fatal(err)
	}
	if err := b.Consume("id-1", deadline); err != nil {
		t.Fatalf("same assertion ID from another connection: %v", err)
	}
	if err := a.Consume("id-1", deadline); !errors.Is(err, crewsaml.ErrAssertionReplayed) {
		t.Fatalf("replay = %v, want ErrAssertionReplayed", err)
	}
}

func TestHardeningEnabled(t *testing.T) {
	f := setup(t, setupOpts{})
	sp := f.c.sp
	if !sp.RejectSHA1Signatures || !sp.RejectUnknownConditions || !sp.RequireSignedResponseForCBC ||
		!sp.RejectExpiredIDPMetadata || !sp.LimitRelayStateLength || !sp.RequireStandardArtifacts ||
		sp.AllowIDPInitiated || sp.ValidateRequestID != nil || sp.AllowInsecureSOAPEndpoints ||
		sp.IgnoreCertificateExpiry || sp.AcceptAssertionBaseID {
		t.Fatalf("hardening not fully enabled: %+v", sp)
	}
	if sp.SignatureMethod != "" {
		t.Fatalf("SignatureMethod = %q without SignRequests", sp.SignatureMethod)
	}
}

func TestSPMetadata(t *testing.T) {
	f := setup(t, setupOpts{})
	raw, err := f.c.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	var md crewsaml.EntityDescriptor
	if err := xml.Unmarshal(raw, &md); err != nil {
		t.Fatal(err)
	}
	if md.EntityID != spEntityID || len(md.SPSSODescriptors) != 1 {
		t.Fatalf("metadata = %s", raw)
	}
	d := md.SPSSODescriptors[0]
	if len(d.AssertionConsumerServices) != 1 || d.AssertionConsumerServices[0].Location != acsURL ||
		d.AssertionConsumerServices[0].Binding != crewsaml.HTTPPostBinding {
		t.Fatalf("ACS = %+v", d.AssertionConsumerServices)
	}
	uses := map[string]bool{}
	for _, kd := range d.KeyDescriptors {
		uses[kd.Use] = true
	}
	if !uses["signing"] || !uses["encryption"] {
		t.Fatalf("key descriptors = %v", uses)
	}
}

// withoutEncryptionKey drops the SP's encryption key from its metadata, so
// the IdP sends the assertion in the clear.
func withoutEncryptionKey(t *testing.T, md []byte) []byte {
	t.Helper()
	var ed crewsaml.EntityDescriptor
	if err := xml.Unmarshal(md, &ed); err != nil {
		t.Fatal(err)
	}
	for i := range ed.SPSSODescriptors {
		d := &ed.SPSSODescriptors[i]
		kept := d.KeyDescriptors[:0]
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "encryption" {
				kept = append(kept, kd)
			}
		}
		d.KeyDescriptors = kept
	}
	out, err := xml.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

package saml

// Attacks that crewjam's opt-in hardening switches stop, one test per
// attack: RejectUnknownConditions, RequireSignedResponseForCBC and
// RejectExpiredIDPMetadata. Each builds the hostile message from a real
// samlidp response (re-signed with the IdP's own key where the attack
// needs a valid signature), checks that it is refused with a stable reason
// and that nothing was remembered, and shows with the switch turned off on
// a copy of the connector that the refusal is the switch's doing.

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewsaml "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/ssogate/ssogate/connector"
	"github.com/ssogate/ssogate/internal/samltest"
)

const (
	nsXMLEnc    = "http://www.w3.org/2001/04/xmlenc#"
	algAES128CB = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
)

// signAsIdP signs el (an Assertion or a Response, its old signature
// dropped) with the IdP's key exactly as samlidp does: exclusive c14n,
// RSA-SHA256, the enveloped signature right after the Issuer.
func signAsIdP(t *testing.T, idp *samltest.IdP, el *etree.Element) *etree.Element {
	t.Helper()
	cfg := idp.Server.IDP
	sc := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{
		Certificate: [][]byte{cfg.Certificate.Raw}, PrivateKey: cfg.Key, Leaf: cfg.Certificate}))
	sc.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := sc.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatal(err)
	}
	unsigned := el.Copy()
	if sig := child(unsigned, nsDSig, "Signature"); sig != nil {
		unsigned.RemoveChild(sig)
	}
	signed, err := sc.SignEnveloped(unsigned)
	if err != nil {
		t.Fatalf("signing <%s>: %v", el.FullTag(), err)
	}
	// goxmldsig appends the signature without making signed its parent:
	// take it off the end by hand, then put it where SAML wants it.
	sig, ok := signed.Child[len(signed.Child)-1].(*etree.Element)
	if !ok || sig.Tag != "Signature" {
		t.Fatalf("no signature at the end of the signed <%s>", el.FullTag())
	}
	signed.Child = signed.Child[:len(signed.Child)-1]
	signed.InsertChildAt(mustChild(t, signed, nsAssertion, "Issuer").Index()+1, sig)
	return signed
}

// replaceChild puts repl where old is under parent.
func replaceChild(parent, old, repl *etree.Element) {
	i := old.Index()
	parent.RemoveChild(old)
	parent.InsertChildAt(i, repl)
}

// withSwitch is a copy of c with one ServiceProvider setting changed.
func withSwitch(c *Connector, set func(sp *crewsaml.ServiceProvider)) *Connector {
	cc := *c
	set(&cc.sp)
	return &cc
}

// withReplay is a copy of c that remembers assertions in r.
func withReplay(c *Connector, r ReplayStore) *Connector {
	cc := *c
	cc.replay = r
	return &cc
}

// remembered is how many assertions the replay store took.
func (m *memReplay) remembered() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.seen)
}

// wantRefusedNothingKept checks a refusal with reason and that the replay
// cache was not written: a refused message leaves nothing behind.
func wantRefusedNothingKept(t *testing.T, id *connector.Identity, err error, reason string, replay *memReplay) {
	t.Helper()
	wantRejected(t, id, err, reason)
	if n := replay.remembered(); n != 0 {
		t.Fatalf("a refused response left %d assertion(s) in the replay cache", n)
	}
}

// TestAttackUnknownConditionSigned: the IdP (or whoever holds its key, or a
// federation peer speaking for it) signs an assertion whose Conditions
// carry a condition this SP does not understand, such as a delegation or
// "only on Tuesdays" restriction. SAML Core §2.5.1.1 makes it Indeterminate:
// it must be refused, not read as if the condition were not there.
func TestAttackUnknownConditionSigned(t *testing.T) {
	f := setup(t, setupOpts{plaintext: true})
	for _, tc := range []struct {
		name string
		add  func(conditions *etree.Element)
	}{
		{"xsi:typed saml:Condition", func(c *etree.Element) {
			el := c.CreateElement("saml:Condition")
			el.CreateAttr("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
			el.CreateAttr("xmlns:ext", "urn:example:conditions")
			el.CreateAttr("xsi:type", "ext:DelegationRestrictionType")
		}},
		{"foreign-namespace condition", func(c *etree.Element) {
			el := c.CreateElement("ext:OnlyOnTuesdays")
			el.CreateAttr("xmlns:ext", "urn:example:conditions")
		}},
		{"unknown SAML-namespace condition", func(c *etree.Element) {
			c.CreateElement("saml:MustBeOnTuesday")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// forge logs in once and returns the attack: the assertion
			// with the condition, the assertion and the Response both
			// signed again with the IdP's key.
			forge := func(t *testing.T) (*connector.Begun, []byte, url.Values) {
				begun, form := f.login(t)
				p := parseResponseXML(t, decodeResponse(t, form))
				a := p.assertion.Copy()
				tc.add(mustFind(t, a, "./Conditions")[0])
				replaceChild(p.resp, p.assertion, signAsIdP(t, f.idp, a))
				p.doc.SetRoot(signAsIdP(t, f.idp, p.resp))
				return begun, p.bytes(t), form
			}

			// Refused with the switch on; nothing remembered.
			begun, doc, form := forge(t)
			replay := &memReplay{}
			id, err := finish(withReplay(f.c, replay), begun, withResponse(form, doc))
			wantRefusedNothingKept(t, id, err, "unsupported", replay)
			if !strings.Contains(err.Error(), "unrecognised conditions") {
				t.Fatalf("the refusal does not name the condition: %v", err)
			}

			// The forged signatures are good: with the switch off the very
			// same kind of message is accepted (the condition ignored),
			// which is the hole RejectUnknownConditions closes.
			begun, doc, form = forge(t)
			off := withSwitch(f.c, func(sp *crewsaml.ServiceProvider) { sp.RejectUnknownConditions = false })
			if id, err := finish(off, begun, withResponse(form, doc)); err != nil || id == nil || id.Email != "alice@example.com" {
				t.Fatalf("re-signed assertion with the switch off: identity %+v, err %v (the test's signing is broken)", id, err)
			}
		})
	}
}

// cbcOnly rewrites SP metadata so that its encryption key lists AES-128-CBC
// as its only block cipher: samlidp then encrypts assertions with it, as
// IdPs that ignore (or predate) AES-GCM do.
func cbcOnly(t *testing.T, md []byte) []byte {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(md); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, kd := range doc.FindElements("//KeyDescriptor") {
		if kd.SelectAttrValue("use", "") != "encryption" {
			continue
		}
		for _, m := range kd.SelectElements("EncryptionMethod") {
			alg := m.SelectAttrValue("Algorithm", "")
			if alg != algAES128CB && !strings.Contains(alg, "rsa-oaep") {
				kd.RemoveChild(m)
			}
		}
		n++
	}
	if n == 0 {
		t.Fatal("no encryption KeyDescriptor in the SP metadata")
	}
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// encryptedParts parses a response carrying an EncryptedAssertion.
func encryptedParts(t *testing.T, raw []byte) (doc *etree.Document, resp, sig, encrypted *etree.Element, alg string) {
	t.Helper()
	doc = etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	resp = doc.Root()
	sig = child(resp, nsDSig, "Signature")
	encrypted = mustChild(t, resp, nsAssertion, "EncryptedAssertion")
	if child(resp, nsAssertion, "Assertion") != nil {
		t.Fatal("the response also carries a plaintext assertion")
	}
	ed := mustChild(t, encrypted, nsXMLEnc, "EncryptedData")
	return doc, resp, sig, encrypted, mustChild(t, ed, nsXMLEnc, "EncryptionMethod").SelectAttrValue("Algorithm", "")
}

func writeDoc(t *testing.T, doc *etree.Document) []byte {
	t.Helper()
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAttackCBCEncryptedAssertionInUnsignedResponse: an attacker who
// captured (or builds) a response with an AES-CBC EncryptedAssertion drops
// the Response signature and alters the ciphertext. An SP that decrypts
// before anything is authenticated answers differently for good and bad
// padding: the oracle that recovers plaintext (Jager and Somorovsky, "How
// to break XML Encryption"). With RequireSignedResponseForCBC the unsigned
// Response is refused before any decryption.
func TestAttackCBCEncryptedAssertionInUnsignedResponse(t *testing.T) {
	f := setup(t, setupOpts{spMetadata: cbcOnly})

	t.Run("control: CBC in a signed Response is accepted", func(t *testing.T) {
		begun, form := f.login(t)
		_, _, sig, _, alg := encryptedParts(t, decodeResponse(t, form))
		if alg != algAES128CB || sig == nil {
			t.Fatalf("the IdP sent %s, signed %v; want AES-128-CBC in a signed Response", alg, sig != nil)
		}
		if id, err := finish(f.c, begun, form); err != nil || id == nil || id.Email != "alice@example.com" {
			t.Fatalf("signed CBC response: identity %+v, err %v", id, err)
		}
	})

	// strip returns the response without its signature, the ciphertext
	// optionally altered in its last block (what a padding oracle probes).
	strip := func(t *testing.T, form url.Values, tamper bool) []byte {
		doc, resp, sig, enc, _ := encryptedParts(t, decodeResponse(t, form))
		resp.RemoveChild(sig)
		if tamper {
			cv := mustFind(t, enc, "./EncryptedData/CipherData/CipherValue")[0]
			ct, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(cv.Text()), ""))
			if err != nil || len(ct) < 32 {
				t.Fatalf("CipherValue: %d bytes, %v", len(ct), err)
			}
			ct[len(ct)-17] ^= 0x01 // the previous block's last byte flips the padding byte
			cv.SetText(base64.StdEncoding.EncodeToString(ct))
		}
		return writeDoc(t, doc)
	}

	for _, tc := range []struct {
		name   string
		tamper bool
	}{
		{"Response signature stripped", false},
		{"Response signature stripped, ciphertext altered (padding oracle probe)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			begun, form := f.login(t)
			replay := &memReplay{}
			id, err := finish(withReplay(f.c, replay), begun, withResponse(form, strip(t, form, tc.tamper)))
			wantRefusedNothingKept(t, id, err, "signature", replay)
			// Refused before decrypting: not a decryption failure, and the
			// same answer whatever the ciphertext (no oracle).
			if errors.Is(err, crewsaml.ErrDecryptionFailed) || !strings.Contains(err.Error(), "RequireSignedResponseForCBC") {
				t.Fatalf("refused for another reason than the unsigned CBC response: %v", err)
			}

			// With the switch off the SP decrypts what the attacker sent:
			// the untouched one is even accepted, the altered one fails
			// inside decryption, an answer that differs from the above.
			begun, form = f.login(t)
			off := withSwitch(f.c, func(sp *crewsaml.ServiceProvider) { sp.RequireSignedResponseForCBC = false })
			id, err = finish(off, begun, withResponse(form, strip(t, form, tc.tamper)))
			switch {
			case !tc.tamper && (err != nil || id == nil):
				t.Fatalf("unsigned CBC response with the switch off: identity %+v, err %v", id, err)
			case tc.tamper && (id != nil || connector.Reason(err) == "signature" && strings.Contains(err.Error(), "RequireSignedResponseForCBC")):
				t.Fatalf("altered CBC response with the switch off: identity %+v, err %v", id, err)
			}
			t.Logf("switch off: identity %v, err %v", id != nil, err)
		})
	}

	t.Run("control: AES-GCM in an unsigned Response is not affected", func(t *testing.T) {
		g := setup(t, setupOpts{}) // the SP metadata lists AES-GCM first
		begun, form := g.login(t)
		doc, resp, sig, _, alg := encryptedParts(t, decodeResponse(t, form))
		if !strings.Contains(alg, "gcm") {
			t.Fatalf("the IdP sent %s, want AES-GCM", alg)
		}
		resp.RemoveChild(sig)
		if id, err := finish(g.c, begun, withResponse(form, writeDoc(t, doc))); err != nil || id == nil {
			t.Fatalf("unsigned GCM response (signed assertion inside): identity %+v, err %v", id, err)
		}
	})
}

// TestAttackExpiredIDPMetadata: metadata past its validUntil may hold a
// signing key the IdP has since retired (or lost); SAML Metadata §4.3.1 says
// it must not be relied on. A connection with expired metadata cannot be
// created; one whose metadata expires later stops sending people to the
// IdP and refuses the IdP's answers, with a reason that tells the admin
// what to fix.
func TestAttackExpiredIDPMetadata(t *testing.T) {
	f := setup(t, setupOpts{plaintext: true})

	t.Run("already expired: refused at creation", func(t *testing.T) {
		for name, edit := range map[string]func(string) string{
			"EntityDescriptor validUntil": func(md string) string { return md },
			// Only the IDPSSODescriptor (where the keys are) has expired.
			"IDPSSODescriptor validUntil": func(md string) string {
				md = regexp.MustCompile(`validUntil="[^"]*"`).ReplaceAllString(md, `validUntil="`+time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339)+`"`)
				return strings.Replace(md, "<IDPSSODescriptor ", `<IDPSSODescriptor validUntil="`+time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)+`" `, 1)
			},
		} {
			t.Run(name, func(t *testing.T) {
				md := edit(f.idp.MetadataXMLValidUntil(t, time.Now().Add(-time.Minute)))
				if !strings.Contains(md, "<IDPSSODescriptor ") {
					t.Fatalf("unexpected metadata shape:\n%s", md)
				}
				conn := *f.conn
				conn.IDPMetadataURL, conn.IDPMetadataXML = "", md
				c, err := New(context.Background(), &conn, f.cfg)
				if c != nil || err == nil || !strings.HasPrefix(err.Error(), "IdP metadata: expired at ") ||
					!strings.Contains(err.Error(), "fetch a fresh copy") {
					t.Fatalf("New with expired metadata = %v, %v", c, err)
				}
			})
		}
	})

	t.Run("expires after creation: refused at sign-in", func(t *testing.T) {
		// Valid for 30 s; the SP clock then moves 60 s on, which the
		// assertion (90 s lifetime, 180 s skew) survives: only the
		// metadata is out of date.
		var offset time.Duration
		cfg := f.cfg
		replay := &memReplay{}
		cfg.Replay = replay
		cfg.Clock = func() time.Time { return time.Now().Add(offset) }
		conn := *f.conn
		conn.IDPMetadataURL, conn.IDPMetadataXML = "", f.idp.MetadataXMLValidUntil(t, time.Now().Add(30*time.Second))
		c, err := New(context.Background(), &conn, cfg)
		if err != nil {
			t.Fatalf("New with metadata valid for 30 s: %v", err)
		}
		begun, err := c.Begin(context.Background(), state, "")
		if err != nil {
			t.Fatal(err)
		}
		_, form := f.idp.Login(t, nil, begun.RedirectURL, "alice", "pw")
		offset = time.Minute

		// Nobody is sent to the IdP any more.
		if b, err := c.Begin(context.Background(), state, ""); b != nil || connector.Reason(err) != ReasonMetadataExpired ||
			!strings.Contains(err.Error(), "IdP metadata: expired at ") {
			t.Fatalf("Begin with expired metadata = %+v, %v", b, err)
		}
		// The IdP's answer is refused (RejectExpiredIDPMetadata).
		id, err := finish(c, begun, form)
		wantRefusedNothingKept(t, id, err, ReasonMetadataExpired, replay)
		if !errors.Is(err, crewsaml.ErrExpired) || !strings.Contains(err.Error(), "IDP metadata expired") {
			t.Fatalf("refused for another reason than the expired metadata: %v", err)
		}
		// Without the switch the same response would have been accepted.
		off := withSwitch(c, func(sp *crewsaml.ServiceProvider) { sp.RejectExpiredIDPMetadata = false })
		if id, err := finish(off, begun, form); err != nil || id == nil {
			t.Fatalf("the response with the switch off: identity %+v, err %v", id, err)
		}
	})
}

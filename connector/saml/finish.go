package saml

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	crewsaml "github.com/crewjam/saml"

	"github.com/ssogate/ssogate/connector"
	"github.com/ssogate/ssogate/store"
)

// maxACSBody bounds the ACS form; a response with many groups and
// attributes is still well under it.
const maxACSBody = 2 << 20

// Finish checks the IdP's POST to the ACS: the response must answer
// begun.RequestID and be seen for the first time. Refusals are
// *connector.Error values whose Err is crewjam's private cause (for logs,
// never for users). A replay store failure is returned as a plain error:
// the sign-in fails, but it is not the IdP's or the user's fault.
func (c *Connector) Finish(ctx context.Context, r *http.Request, begun *connector.Begun) (*connector.Identity, error) {
	if begun == nil || begun.RequestID == "" {
		return nil, connector.Refuse("unsolicited", errors.New("no SAML request is pending for this sign-in"))
	}
	if r.Method != http.MethodPost {
		return nil, connector.Refuse("malformed", fmt.Errorf("ACS called with %s, want POST", r.Method))
	}
	if r.PostForm == nil {
		r.Body = http.MaxBytesReader(nil, r.Body, maxACSBody)
		if err := r.ParseForm(); err != nil {
			return nil, connector.Refuse("malformed", fmt.Errorf("parsing the ACS form: %w", err))
		}
	}
	// We advertise only HTTP-POST; an artifact would make us call out to
	// the IdP's SOAP endpoint on a stranger's request.
	if r.Form.Get("SAMLart") != "" {
		return nil, connector.Refuse("malformed", errors.New("HTTP-Artifact binding is not supported"))
	}
	if r.PostForm.Get("SAMLResponse") == "" {
		return nil, connector.Refuse("malformed", errors.New("no SAMLResponse in the ACS form"))
	}
	// SAML has no use for DTDs: refuse them before any XML parser runs.
	// IdPs may wrap the base64 at 76 characters: drop whitespace first.
	if raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(r.PostForm.Get("SAMLResponse")), "")); err != nil ||
		hasDTD(raw) {
		if err != nil {
			return nil, connector.Refuse("malformed", fmt.Errorf("SAMLResponse is not base64: %w", err))
		}
		return nil, connector.Refuse("malformed", errors.New("the response carries a document type declaration"))
	}

	// A copy per call, so the replay cache carries this request's context.
	sp := c.sp
	sp.ReplayCache = replayCache{ctx: ctx, connID: c.connID, store: c.replay}
	assertion, err := sp.ParseResponse(r, []string{begun.RequestID})
	if err != nil {
		return nil, refusal(err, checkNotExpired(c.expires, c.now()) != nil)
	}
	return c.identity(assertion)
}

// replayCache adapts the store to crewjam's AssertionReplayCache, keyed per
// connection (assertion IDs are unique only per issuer).
type replayCache struct {
	ctx    context.Context
	connID string
	store  ReplayStore
}

// errReplayStore marks a replay check that could not be made.
var errReplayStore = errors.New("saml connector: replay check failed")

// Consume reports a replay as crewsaml.ErrAssertionReplayed, as crewjam
// expects; any other store error also refuses the assertion (crewjam
// refuses on any error), marked so Finish can tell it apart.
func (rc replayCache) Consume(assertionID string, expiresAt time.Time) error {
	err := rc.store.RememberAssertion(rc.ctx, rc.connID, assertionID, expiresAt)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrAlreadyExists):
		return crewsaml.ErrAssertionReplayed
	default:
		return fmt.Errorf("%w: %w", errReplayStore, err)
	}
}

// refusal maps a ParseResponse error to a refusal reason. crewjam attaches
// sentinels to its causes; a cause may match several (SHA-1 is both
// unsupported and a bad signature), so the order below matters.
// metadataExpired says the IdP metadata has expired: crewjam's refusal of
// it (RejectExpiredIDPMetadata) matches ErrExpired and ErrInvalidSignature,
// and is labelled as what it is rather than as an expired assertion.
func refusal(err error, metadataExpired bool) error {
	cause := err
	var ire *crewsaml.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		cause = ire.PrivateErr
	}
	if errors.Is(cause, errReplayStore) {
		return fmt.Errorf("saml connector: %w", cause)
	}
	var badStatus crewsaml.ErrBadStatus
	reason := "invalid_response"
	switch {
	case metadataExpired && errors.Is(cause, crewsaml.ErrExpired):
		reason = ReasonMetadataExpired
	case errors.Is(cause, crewsaml.ErrAssertionReplayed):
		reason = "replay"
	case errors.Is(cause, crewsaml.ErrRequestIDMismatch):
		reason = "in_response_to"
		if ire != nil && responseInResponseTo(ire.Response) == "" {
			reason = "unsolicited"
		}
	case errors.Is(cause, crewsaml.ErrExpired), errors.Is(cause, crewsaml.ErrNotYetValid):
		reason = "expired"
	case errors.Is(cause, crewsaml.ErrInvalidSignature), errors.Is(cause, crewsaml.ErrUntrustedCertificate),
		errors.Is(cause, crewsaml.ErrCertificateNotValidNow), errors.Is(cause, crewsaml.ErrInvalidCertificate):
		reason = "signature"
	case errors.Is(cause, crewsaml.ErrAudienceMismatch):
		reason = "audience"
	case errors.Is(cause, crewsaml.ErrDestinationMismatch):
		reason = "destination"
	case errors.Is(cause, crewsaml.ErrIssuerMismatch):
		reason = "issuer"
	case errors.Is(cause, crewsaml.ErrDecryptionFailed):
		reason = "decryption"
	case errors.As(cause, &badStatus):
		reason = "idp_status"
	case errors.Is(cause, crewsaml.ErrUnsupported):
		reason = "unsupported"
	case errors.Is(cause, crewsaml.ErrMalformedMessage), errors.Is(cause, crewsaml.ErrMissingElement):
		reason = "malformed"
	}
	return connector.Refuse(reason, cause)
}

// responseInResponseTo returns the InResponseTo of the Response element in
// doc (already well-formed: crewjam checked it), or "" if it has none. It
// only labels a refusal, so it reads no further than the root element.
func responseInResponseTo(doc string) string {
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Space == "" && a.Name.Local == "InResponseTo" {
					return a.Value
				}
			}
			return ""
		}
	}
}

// hasDTD reports a document type or entity declaration anywhere in doc.
func hasDTD(doc []byte) bool {
	u := bytes.ToUpper(doc)
	return bytes.Contains(u, []byte("<!DOCTYPE")) || bytes.Contains(u, []byte("<!ENTITY"))
}

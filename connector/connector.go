// Package connector defines what every IdP protocol implements so the
// sign-in flow never needs to know whether it talks SAML or OIDC
// (the shape of dex's connector package). The implementations live in
// connector/saml and connector/oidc.
package connector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Connector is one configured IdP connection.
type Connector interface {
	// Begin starts a sign-in. state is an unguessable ID the gateway keeps
	// (with what Begin returns) until the IdP answers; the connector sends
	// it to the IdP (OIDC state, SAML RelayState).
	Begin(ctx context.Context, state, loginHint string) (*Begun, error)
	// Finish checks the IdP's answer (the ACS POST or the OIDC callback)
	// against what Begin returned for that state, and returns who signed in.
	// Refusals are *Error values.
	Finish(ctx context.Context, r *http.Request, begun *Begun) (*Identity, error)
}

// Begun is what Begin hands the gateway to keep and to do.
type Begun struct {
	// RedirectURL is where to send the browser now.
	RedirectURL string `json:"-"`
	// Kept until Finish: OIDC nonce and PKCE verifier, SAML request ID.
	Nonce        string `json:"nonce,omitempty"`
	PKCEVerifier string `json:"pkce_verifier,omitempty"`
	RequestID    string `json:"request_id,omitempty"`
}

// Identity is who the IdP says signed in.
type Identity struct {
	// Issuer and Subject identify the account at the IdP; accounts are
	// keyed on them, never on the email alone.
	Issuer  string
	Subject string
	// Email is as asserted (the gateway normalises and checks it).
	Email         string
	EmailVerified bool
	Name          string
	GivenName     string
	FamilyName    string
	// Groups as asserted (all of them; the gateway keeps the prefixed ones).
	Groups []string
	// GroupsOverage is set when the IdP sent a link instead of the groups
	// (Entra ID with too many groups).
	GroupsOverage bool
	// HostedDomain is Google's hd claim, when present.
	HostedDomain string
	// Attributes are other asserted attributes (first value each).
	Attributes map[string]string
}

// Error is a refused sign-in. Reason is a stable, short code for audit
// events and metrics ("replay", "audience", "signature", "expired",
// "in_response_to", "state", "nonce", "code_exchange", "unverified_email",
// "malformed", …); Err is the private cause, for logs only. Users see a
// generic message.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("sign-in refused (%s): %v", e.Reason, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Refuse builds an *Error.
func Refuse(reason string, err error) error { return &Error{Reason: reason, Err: err} }

// Reason returns the refusal code of err, or "error" for other failures.
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return "error"
}

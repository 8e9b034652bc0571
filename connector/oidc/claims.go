package oidc

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/ssogate/ssogate/connector"
)

// verifyReason maps a go-oidc verification error to a refusal code. go-oidc
// has typed errors only for expiry, so the rest is read from its messages.
func verifyReason(err error) string {
	var expired *gooidc.TokenExpiredError
	if errors.As(err, &expired) {
		return "expired"
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "fetching keys"):
		return "invalid_token" // the IdP's JWKS could not be read
	case strings.Contains(msg, "unexpected signature algorithm"),
		strings.Contains(msg, "failed to verify signature"),
		strings.Contains(msg, "not signed"),
		strings.Contains(msg, "multiple signatures"):
		return "signature"
	case strings.Contains(msg, "issued by a different provider"):
		return "issuer"
	case strings.Contains(msg, "expected audience"):
		return "audience"
	case strings.Contains(msg, "before the nbf"):
		return "expired" // not yet valid: outside its validity window
	}
	return "invalid_token"
}

// standardClaims are not copied to Identity.Attributes.
var standardClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true,
	"nonce": true, "azp": true, "at_hash": true, "c_hash": true, "auth_time": true,
	"jti": true, "sid": true, "email": true, "email_verified": true, "name": true,
	"given_name": true, "family_name": true, "hd": true,
	"_claim_names": true, "_claim_sources": true,
}

// identity applies the checks go-oidc leaves to us and builds the Identity.
func (c *Connector) identity(idt *gooidc.IDToken) (*connector.Identity, error) {
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, connector.Refuse("malformed", fmt.Errorf("ID token claims: %w", err))
	}
	// go-oidc checks that we are in aud, not that the token was issued to us.
	if azp, present := claims["azp"]; present {
		if s, _ := azp.(string); s != c.clientID {
			return nil, connector.Refuse("azp", fmt.Errorf("azp %v is not our client ID", clipAny(azp)))
		}
	} else if len(idt.Audience) > 1 {
		return nil, connector.Refuse("azp", fmt.Errorf("ID token has several audiences %q and no azp", idt.Audience))
	}
	hd, _ := claims["hd"].(string)
	if c.hostedDomain != "" && !strings.EqualFold(hd, c.hostedDomain) {
		return nil, connector.Refuse("hosted_domain",
			fmt.Errorf("hd claim %q, expected %q", clip(hd), c.hostedDomain))
	}
	email, _ := claims["email"].(string)
	if email == "" {
		return nil, connector.Refuse("no_email", errors.New("ID token has no email claim"))
	}
	verified := false
	if v, present := claims["email_verified"]; present {
		switch v {
		case true, "true":
			verified = true
		case false, "false":
			return nil, connector.Refuse("unverified_email", fmt.Errorf("IdP says email %q is not verified", clip(email)))
		default:
			return nil, connector.Refuse("malformed", fmt.Errorf("email_verified is %v", clipAny(v)))
		}
	}
	id := &connector.Identity{
		Issuer:        idt.Issuer,
		Subject:       idt.Subject,
		Email:         email,
		EmailVerified: verified,
		Name:          str(claims["name"]),
		GivenName:     str(claims["given_name"]),
		FamilyName:    str(claims["family_name"]),
		HostedDomain:  hd,
		Groups:        groups(claims[c.groupsClaim]),
	}
	if id.Subject == "" {
		return nil, connector.Refuse("malformed", errors.New("ID token has no sub"))
	}
	// Entra ID's group overage: a pointer to Graph instead of the groups.
	if names, ok := claims["_claim_names"].(map[string]any); ok {
		_, g := names["groups"]
		_, cg := names[c.groupsClaim]
		id.GroupsOverage = g || cg
	}
	for k, v := range claims {
		if standardClaims[k] || k == c.groupsClaim {
			continue
		}
		if s, ok := attr(v); ok {
			if id.Attributes == nil {
				id.Attributes = map[string]string{}
			}
			id.Attributes[k] = s
		}
	}
	return id, nil
}

// groups reads an array of strings or a single string; other values are
// ignored (fewer groups never grant more access).
func groups(v any) []string {
	switch v := v.(type) {
	case string:
		if v != "" {
			return []string{v}
		}
	case []any:
		var out []string
		for _, g := range v {
			if s, ok := g.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// attr renders a claim as one string: scalars as they are, arrays by their
// first element; objects are skipped.
func attr(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case []any:
		if len(v) > 0 {
			return attr(v[0])
		}
	}
	return "", false
}

func clipAny(v any) string {
	b, _ := json.Marshal(v)
	return clip(string(b))
}

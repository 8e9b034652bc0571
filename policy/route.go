package policy

// Capture is what the store knows about an email's domain, for routing.
type Capture struct {
	// Captured: a parent org verified the email's domain.
	Captured bool
	ParentID string
	// SSOEnforced: that parent org requires SSO.
	SSOEnforced bool
	// Connections of that parent org, in preference order.
	Connections []string
}

// Method is how a sign-in proceeds.
type Method string

// Login routes.
const (
	// RouteSSO sends the browser straight to the IdP.
	RouteSSO Method = "sso"
	// RouteSSOOffered shows SSO first, next to the other methods.
	RouteSSOOffered Method = "sso_offered"
	// RouteDefault uses the non-SSO methods (email link, social login).
	RouteDefault Method = "default"
	// RouteSSOUnavailable: SSO is required but no connection exists; the
	// sign-in is refused rather than falling back to weaker methods.
	RouteSSOUnavailable Method = "sso_unavailable"
)

// Route is the decision for one email.
type Route struct {
	Method       Method
	ParentID     string
	ConnectionID string // for RouteSSO and RouteSSOOffered
}

// LoginRoute decides which sign-in an email takes. A captured domain whose
// parent org enforces SSO never falls back to another method.
func LoginRoute(c Capture) Route {
	if !c.Captured {
		return Route{Method: RouteDefault}
	}
	r := Route{ParentID: c.ParentID}
	if len(c.Connections) > 0 {
		r.ConnectionID = c.Connections[0]
	}
	switch {
	case c.SSOEnforced && r.ConnectionID != "":
		r.Method = RouteSSO
	case c.SSOEnforced:
		r.Method = RouteSSOUnavailable
	case r.ConnectionID != "":
		r.Method = RouteSSOOffered
	default:
		r.Method = RouteDefault
	}
	return r
}

// NonSSOAllowed reports whether an email may sign in without SSO (email
// link, social login): not when its domain is captured by a parent org
// that enforces SSO.
func NonSSOAllowed(c Capture) bool {
	return !(c.Captured && c.SSOEnforced)
}

// SSOIdentityAllowed is the cross-tenant rule: an IdP of a parent org may
// only vouch for emails on domains that parent org verified.
func SSOIdentityAllowed(connectionParentID string, c Capture) bool {
	return c.Captured && c.ParentID != "" && c.ParentID == connectionParentID
}

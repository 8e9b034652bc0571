package caddymodule

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"go.uber.org/zap"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	oidcconn "github.com/ssogate/ssogate/connector/oidc"
	samlconn "github.com/ssogate/ssogate/connector/saml"
	"github.com/ssogate/ssogate/store"
)

// connectionView is a connection plus what the IdP admin must paste.
type connectionView struct {
	*store.Connection
	DefaultOrg string         `json:"default_org"`
	Setup      map[string]any `json:"setup"`
}

func (h *Handler) viewConnection(ctx context.Context, c *store.Connection) connectionView {
	v := connectionView{Connection: c}
	if o, err := h.app.store.GetOrg(ctx, c.DefaultOrgID); err == nil {
		v.DefaultOrg = o.Slug
	}
	v.Setup = h.setupValues(c.Type, c.ID)
	return v
}

// apiConnectionSetup answers a fresh connection id and the values to paste
// into the IdP for it, so an IdP that wants the ACS or redirect URL before
// it shows its metadata (Okta, Entra ID, Google) can be set up first.
// Nothing is stored: POST /connections with this id creates it.
func (h *Handler) apiConnectionSetup(w http.ResponseWriter, r *http.Request, c *caller) {
	typ := store.ConnectionType(r.URL.Query().Get("type"))
	if typ != store.ConnSAML && typ != store.ConnOIDC {
		writeJSONError(w, http.StatusBadRequest, "invalid_type", `type must be "saml" or "oidc"`)
		return
	}
	id, err := h.nextSetupID(r.Context(), c.ParentID)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "type": typ, "setup": h.setupValues(typ, id)})
}

// setupID is the k-th connection ID a parent org may pick in advance. It
// is derived from the parent org with the gateway's key, so no other
// tenant can create a connection under it (or squat it), and the same
// ID comes back on every call until a connection uses it: an IdP set up
// with its URLs stays right when the page is reloaded.
func (h *Handler) setupID(parentID string, k int) string {
	m := hmac.New(sha256.New, h.app.csrfKey)
	fmt.Fprintf(m, "connection-id\x00%s\x00%d", parentID, k)
	var b [16]byte
	copy(b[:], m.Sum(nil))
	return store.IDFromBytes(b)
}

// nextSetupID is the first setup ID of the parent org no connection uses.
func (h *Handler) nextSetupID(ctx context.Context, parentID string) (string, error) {
	list, err := h.app.store.ListConnections(ctx, parentID)
	if err != nil {
		return "", err
	}
	used := make(map[string]bool, len(list))
	for _, c := range list {
		used[c.ID] = true
	}
	for k := 0; ; k++ {
		if id := h.setupID(parentID, k); !used[id] {
			return id, nil
		}
	}
}

// setupIDSlack bounds how far past the number of connections a setup ID
// is looked for (connections deleted after the ID was handed out).
const setupIDSlack = 64

// isSetupID tells whether id is one of the parent org's setup IDs.
func (h *Handler) isSetupID(ctx context.Context, parentID, id string) (bool, error) {
	list, err := h.app.store.ListConnections(ctx, parentID)
	if err != nil {
		return false, err
	}
	for k := 0; k <= len(list)+setupIDSlack; k++ {
		if hmac.Equal([]byte(h.setupID(parentID, k)), []byte(id)) {
			return true, nil
		}
	}
	return false, nil
}

// setupValues are what the IdP admin pastes for a connection.
func (h *Handler) setupValues(typ store.ConnectionType, id string) map[string]any {
	setup := map[string]any{"login_url": h.tileURL()}
	switch typ {
	case store.ConnSAML:
		setup["acs_url"] = h.acsURL(id)
		setup["entity_id"] = h.spEntityID(id)
		setup["sp_metadata_url"] = h.spEntityID(id)
		setup["name_id_format"] = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
		setup["attributes"] = map[string]any{
			"okta":             map[string]string{"email": "user.email", "firstName": "user.firstName", "lastName": "user.lastName", "groups": "Group Attribute Statement \"groups\", filter: starts with " + h.app.GroupPrefix},
			"entra":            map[string]string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": "user.mail", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": "user.givenname", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname": "user.surname", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups": "Groups assigned to the application (cloud-only group names)"},
			"google_workspace": map[string]string{"email": "Primary email", "firstName": "First name", "lastName": "Last name", "groups": "Group membership (the " + h.app.GroupPrefix + "* groups)"},
		}
	case store.ConnOIDC:
		setup["redirect_uri"] = h.redirectURI(id)
		setup["scopes"] = "openid email profile"
		setup["claims"] = map[string]string{"email": "email", "groups": "groups (Okta: a Groups claim filtered by prefix " + h.app.GroupPrefix + "; Entra ID: groups claim, cloud group names)"}
	}
	return setup
}

type connectionInput struct {
	// ID, optional, is one from GET /connections/setup (for this parent
	// org): the IdP was set up with its URLs before its metadata existed.
	ID             string `json:"id"`
	Type           string `json:"type"`
	Name           string `json:"name"`
	DefaultOrg     string `json:"default_org"`
	MetadataURL    string `json:"metadata_url"`
	MetadataXML    string `json:"metadata_xml"`
	EmailAttribute string `json:"email_attribute"`
	GroupAttribute string `json:"group_attribute"`
	SignRequests   bool   `json:"sign_requests"`
	Issuer         string `json:"issuer"`
	ClientID       string `json:"client_id"`
	ClientSecret   string `json:"client_secret"`
	HostedDomain   string `json:"hosted_domain"`
}

func (h *Handler) apiCreateConnection(w http.ResponseWriter, r *http.Request, c *caller) {
	var in connectionInput
	if !decodeJSON(w, r, &in) {
		return
	}
	conn, status, code, msg := h.connectionFromInput(r, c, &in)
	if status != 0 {
		writeJSONError(w, status, code, msg)
		return
	}
	if err := h.app.store.CreateConnection(r.Context(), conn); errors.Is(err, store.ErrAlreadyExists) {
		writeJSONError(w, http.StatusConflict, "id_taken", "a connection with this id exists; get a new one from GET /connections/setup")
		return
	} else if err != nil {
		h.apiStoreError(w, err)
		return
	}
	h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, Actor: c.Actor, Action: "connection.create", Target: conn.ID,
		Outcome: "success", Details: map[string]string{"type": string(conn.Type), "name": conn.Name}})
	writeJSON(w, http.StatusCreated, h.viewConnection(r.Context(), conn))
}

// connectionFromInput validates the input and checks the IdP answers
// (metadata parses; OIDC discovery works) before anything is stored.
func (h *Handler) connectionFromInput(r *http.Request, c *caller, in *connectionInput) (*store.Connection, int, string, string) {
	ctx := r.Context()
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 100 {
		return nil, 400, "invalid_name", "name is required (at most 100 characters)"
	}
	orgID, status, code, msg := h.defaultOrg(ctx, c, in.DefaultOrg)
	if status != 0 {
		return nil, status, code, msg
	}
	id := store.NewID()
	if in.ID != "" {
		ok, err := h.isSetupID(ctx, c.ParentID, in.ID)
		if err != nil {
			return nil, 503, "unavailable", "the store is unreachable"
		}
		if !ok {
			return nil, 400, "invalid_id", "id must be one answered by GET /connections/setup"
		}
		id = in.ID
	}
	conn := &store.Connection{ID: id, ParentID: c.ParentID, Name: in.Name, DefaultOrgID: orgID,
		EmailAttribute: in.EmailAttribute, GroupAttribute: in.GroupAttribute}
	switch in.Type {
	case "saml":
		conn.Type, conn.SignRequests = store.ConnSAML, in.SignRequests
		if (in.MetadataURL == "") == (in.MetadataXML == "") {
			return nil, 400, "invalid_metadata", "give exactly one of metadata_url and metadata_xml"
		}
		raw := []byte(in.MetadataXML)
		if in.MetadataURL != "" {
			if err := checkIdPURL(in.MetadataURL, h.app.AllowPrivateIdPs); err != nil {
				return nil, 400, "invalid_metadata_url", err.Error()
			}
			var err error
			if raw, err = fetchMetadata(ctx, h.app.idpClient, in.MetadataURL); err != nil {
				return nil, 400, "metadata_unreachable", err.Error()
			}
			conn.IDPMetadataURL = in.MetadataURL
		}
		if _, err := samlconn.ParseMetadata(raw); err != nil {
			return nil, 400, "invalid_metadata", err.Error()
		}
		conn.IDPMetadataXML = string(raw)
		if _, err := h.samlConnector(ctx, conn); err != nil {
			return nil, 400, "invalid_metadata", err.Error()
		}
	case "oidc":
		conn.Type, conn.Issuer, conn.ClientID, conn.ClientSecret, conn.HostedDomain = store.ConnOIDC, in.Issuer, in.ClientID, in.ClientSecret, in.HostedDomain
		if err := checkIdPURL(in.Issuer, h.app.AllowPrivateIdPs); err != nil {
			return nil, 400, "invalid_issuer", err.Error()
		}
		if in.ClientID == "" || in.ClientSecret == "" {
			return nil, 400, "invalid_client", "client_id and client_secret are required"
		}
		if _, err := oidcconn.New(ctx, conn, oidcconn.Config{RedirectURL: h.redirectURI(conn.ID), HTTPClient: h.app.idpClient}); err != nil {
			// go-oidc's error holds the answer's body: log it, do not echo
			// what an arbitrary URL said back to the caller.
			h.logger.Warn("OIDC discovery failed", zap.String("issuer", in.Issuer), zap.Error(err))
			return nil, 400, "discovery_failed", "OIDC discovery failed for " + in.Issuer +
				": check the issuer URL (its /.well-known/openid-configuration must answer, with this issuer); the cause is in the gateway's log"
		}
	default:
		return nil, 400, "invalid_type", `type must be "saml" or "oidc"`
	}
	return conn, 0, "", ""
}

// defaultOrg resolves the org JIT puts new members in: the named one, or
// the parent org's only org.
func (h *Handler) defaultOrg(ctx context.Context, c *caller, slug string) (string, int, string, string) {
	if slug != "" {
		o, err := h.app.store.GetOrgBySlug(ctx, slug)
		if err != nil || o.ParentID != c.ParentID {
			return "", 400, "invalid_default_org", "default_org must be the slug of one of your organizations"
		}
		return o.ID, 0, "", ""
	}
	orgs, err := h.app.store.ListOrgs(ctx, c.ParentID)
	if err != nil {
		return "", 503, "unavailable", "the store is unreachable"
	}
	if len(orgs) != 1 {
		return "", 400, "invalid_default_org", "you have several organizations: set default_org to the slug new members join"
	}
	return orgs[0].ID, 0, "", ""
}

// checkIdPURL accepts https URLs, and http only on loopback when private
// IdPs are allowed (local IdPs in development).
func checkIdPURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.Scheme == "https" {
		return nil
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); allowPrivate && u.Scheme == "http" && (host == "localhost" || (ip != nil && ip.IsLoopback())) {
		return nil
	}
	return fmt.Errorf("%q must use https", raw)
}

// fetchMetadata downloads IdP metadata with a timeout and a 1 MiB limit.
func fetchMetadata(ctx context.Context, client *http.Client, raw string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching IdP metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching IdP metadata: HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20+1))
	if err != nil {
		return nil, fmt.Errorf("fetching IdP metadata: %w", err)
	}
	if len(body) > 1<<20 {
		return nil, errors.New("IdP metadata is larger than 1 MiB")
	}
	return body, nil
}

func (h *Handler) apiListConnections(w http.ResponseWriter, r *http.Request, c *caller) {
	list, err := h.app.store.ListConnections(r.Context(), c.ParentID)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	out := make([]connectionView, 0, len(list))
	for i := range list {
		out = append(out, h.viewConnection(r.Context(), &list[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"connections": out})
}

func (h *Handler) ownConnection(w http.ResponseWriter, r *http.Request, c *caller) (*store.Connection, bool) {
	conn, err := h.app.store.GetConnection(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && conn.ParentID != c.ParentID) {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such connection")
		return nil, false
	}
	if err != nil {
		h.apiStoreError(w, err)
		return nil, false
	}
	return conn, true
}

func (h *Handler) apiGetConnection(w http.ResponseWriter, r *http.Request, c *caller) {
	if conn, ok := h.ownConnection(w, r, c); ok {
		writeJSON(w, http.StatusOK, h.viewConnection(r.Context(), conn))
	}
}

func (h *Handler) apiDeleteConnection(w http.ResponseWriter, r *http.Request, c *caller) {
	conn, ok := h.ownConnection(w, r, c)
	if !ok {
		return
	}
	p, list, ok := h.ssoState(w, r, c)
	if !ok {
		return
	}
	if p.SSOEnforced && !anyTested(list, conn.ID) {
		writeJSONError(w, http.StatusConflict, "sso_enforced", "SSO is enforced: turn it off before deleting the last tested connection")
		return
	}
	if err := h.app.store.DeleteConnection(r.Context(), conn.ID); err != nil {
		h.apiStoreError(w, err)
		return
	}
	h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, Actor: c.Actor, Action: "connection.delete", Target: conn.ID, Outcome: "success"})
	w.WriteHeader(http.StatusNoContent)
}

// apiGetSSO reports whether SSO is enforced and ready.
func (h *Handler) apiGetSSO(w http.ResponseWriter, r *http.Request, c *caller) {
	p, list, ok := h.ssoState(w, r, c)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"enforced": p.SSOEnforced, "connections": len(list), "tested": anyTested(list, ""), "login_url": h.tileURL()})
}

// apiPutSSO turns SSO enforcement on (ending every session of the parent
// org's members) or off. Turning it on needs a connection that has
// completed a sign-in, so nobody is locked out by a broken setup.
func (h *Handler) apiPutSSO(w http.ResponseWriter, r *http.Request, c *caller) {
	var in struct {
		Enforced *bool `json:"enforced"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if in.Enforced == nil {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", `send {"enforced": true} or {"enforced": false}`)
		return
	}
	ctx := r.Context()
	if *in.Enforced {
		list, err := h.app.store.ListConnections(ctx, c.ParentID)
		if err != nil {
			h.apiStoreError(w, err)
			return
		}
		if !anyTested(list, "") {
			writeJSONError(w, http.StatusConflict, "sso_untested", "test a connection first: sign in through it once, then enforce SSO")
			return
		}
	}
	before, err := h.app.store.GetParentOrg(ctx, c.ParentID)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	if _, err := h.app.store.UpdateParentOrg(ctx, c.ParentID, func(p *store.ParentOrg) error {
		p.SSOEnforced = *in.Enforced
		return nil
	}); err != nil {
		h.apiStoreError(w, err)
		return
	}
	ended := 0
	if *in.Enforced && !before.SSOEnforced {
		if ended, err = h.app.sessions.RevokeParent(ctx, c.ParentID); err != nil {
			h.apiStoreError(w, err)
			return
		}
	}
	h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, Actor: c.Actor, Action: "sso.enforce", Outcome: "success",
		Details: map[string]string{"enforced": fmt.Sprint(*in.Enforced), "sessions_ended": fmt.Sprint(ended)}})
	writeJSON(w, http.StatusOK, map[string]any{"enforced": *in.Enforced, "sessions_ended": ended})
}

// apiGetSettings shows the parent org's settings.
func (h *Handler) apiGetSettings(w http.ResponseWriter, r *http.Request, c *caller) {
	p, err := h.app.store.GetParentOrg(r.Context(), c.ParentID)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// apiPatchSettings changes parent-org settings: today whether SCIM may
// provision users on domains the parent org has not verified.
func (h *Handler) apiPatchSettings(w http.ResponseWriter, r *http.Request, c *caller) {
	var in struct {
		AllowUnverifiedSCIMDomains *bool `json:"allow_unverified_scim_domains"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if in.AllowUnverifiedSCIMDomains == nil {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", `send {"allow_unverified_scim_domains": true|false}`)
		return
	}
	p, err := h.app.store.UpdateParentOrg(r.Context(), c.ParentID, func(p *store.ParentOrg) error {
		p.AllowUnverifiedSCIMDomains = *in.AllowUnverifiedSCIMDomains
		return nil
	})
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	h.app.audit(r, &store.AuditEvent{ParentID: c.ParentID, Actor: c.Actor, Action: "settings.update", Outcome: "success",
		Details: map[string]string{"allow_unverified_scim_domains": fmt.Sprint(*in.AllowUnverifiedSCIMDomains)}})
	writeJSON(w, http.StatusOK, p)
}

// anyTested reports whether a connection other than except has completed
// a sign-in.
func anyTested(list []store.Connection, except string) bool {
	for _, x := range list {
		if x.ID != except && !x.TestedAt.IsZero() {
			return true
		}
	}
	return false
}

// ssoState reads the caller's parent org and its connections, answering
// the error itself when the store fails.
func (h *Handler) ssoState(w http.ResponseWriter, r *http.Request, c *caller) (*store.ParentOrg, []store.Connection, bool) {
	p, err := h.app.store.GetParentOrg(r.Context(), c.ParentID)
	if err != nil {
		h.apiStoreError(w, err)
		return nil, nil, false
	}
	list, err := h.app.store.ListConnections(r.Context(), c.ParentID)
	if err != nil {
		h.apiStoreError(w, err)
		return nil, nil, false
	}
	return p, list, true
}

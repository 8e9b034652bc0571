package store

import "time"

// Role is a member's role in one org. Order matters: see RoleRank.
type Role string

// The roles, lowest to highest.
const (
	RoleMember       Role = "member"
	RoleAdmin        Role = "admin"
	RoleOwner        Role = "owner"
	RolePrimaryOwner Role = "primary_owner"
)

// RoleRank orders roles; unknown roles rank 0.
func RoleRank(r Role) int {
	switch r {
	case RoleMember:
		return 1
	case RoleAdmin:
		return 2
	case RoleOwner:
		return 3
	case RolePrimaryOwner:
		return 4
	}
	return 0
}

// ParentOrg holds SSO settings and verified domains shared by its orgs.
type ParentOrg struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// SSOEnforced sends every captured-domain sign-in to the IdP.
	SSOEnforced bool `json:"sso_enforced"`
	// AllowUnverifiedSCIMDomains lets SCIM provision users whose email
	// domain this parent org has not verified.
	AllowUnverifiedSCIMDomains bool `json:"allow_unverified_scim_domains,omitempty"`
}

// Org is one organization (workspace) with its own members and settings.
type Org struct {
	ID        string    `json:"id"`
	Slug      string    `json:"slug"` // globally unique, lower-case
	Name      string    `json:"name"`
	ParentID  string    `json:"parent_id"`
	CreatedAt time.Time `json:"created_at"`
	// GroupMappings is the Advanced Group Mappings toggle.
	GroupMappings bool `json:"group_mappings"`
}

// DomainStatus is the verification state of a domain claim.
type DomainStatus string

// Domain claim states.
const (
	DomainPending  DomainStatus = "pending"
	DomainVerified DomainStatus = "verified"
	DomainFailed   DomainStatus = "failed"
)

// Domain is one parent org's claim on an email domain. Several parent
// orgs may hold pending claims; at most one claim per domain is verified.
type Domain struct {
	Name          string       `json:"domain"` // normalised (lower-case, punycode)
	ParentID      string       `json:"parent_id"`
	Status        DomainStatus `json:"status"`
	Token         string       `json:"-"` // the random part of the TXT value
	TXTName       string       `json:"txt_name"`
	TXTValue      string       `json:"txt_value"`
	CreatedAt     time.Time    `json:"created_at"`
	LastCheckedAt time.Time    `json:"last_checked_at,omitzero"`
	LastError     string       `json:"last_error,omitempty"`
	VerifiedAt    time.Time    `json:"verified_at,omitzero"`
}

// User is one account, identified by its email (unique, lower-case).
type User struct {
	ID          string            `json:"id"`
	Email       string            `json:"email"`
	Name        string            `json:"name,omitempty"`
	GivenName   string            `json:"given_name,omitempty"`
	FamilyName  string            `json:"family_name,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	CreatedBy   string            `json:"created_by,omitempty"` // invite, jit, scim, bootstrap
	LastLoginAt time.Time         `json:"last_login_at,omitzero"`
	// Groups last seen for this user from the IdP (sign-in or SCIM), used
	// for group-mapping previews.
	IdPGroups []string `json:"idp_groups,omitempty"`
}

// Identity links an IdP subject to a user: accounts are keyed on
// (issuer, subject), never on the email alone.
type Identity struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
	UserID  string `json:"user_id"`
}

// MembershipStatus tells whether a membership grants access yet.
type MembershipStatus string

// Membership states.
const (
	MemberActive   MembershipStatus = "active"
	MemberInvited  MembershipStatus = "invited"
	MemberInactive MembershipStatus = "inactive" // SCIM active=false
	// MemberUnmapped: provisioned by SCIM, but no mapped group grants
	// access (Advanced Group Mappings). The SCIM resource stays.
	MemberUnmapped MembershipStatus = "unmapped"
)

// Membership is a user's place in one org.
type Membership struct {
	OrgID     string           `json:"org_id"`
	UserID    string           `json:"user_id"`
	Role      Role             `json:"role"`
	Status    MembershipStatus `json:"status"`
	Source    string           `json:"source,omitempty"` // invite, jit, scim, group, bootstrap
	CreatedAt time.Time        `json:"created_at"`
	// SCIM fields, set when the IdP provisions the member.
	SCIMUserName   string `json:"scim_user_name,omitempty"`
	SCIMExternalID string `json:"scim_external_id,omitempty"`
}

// Group is an IdP group pushed over SCIM into one org.
type Group struct {
	ID          string    `json:"id"`
	OrgID       string    `json:"org_id"`
	DisplayName string    `json:"display_name"`
	ExternalID  string    `json:"external_id,omitempty"`
	Members     []string  `json:"members"` // user IDs
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// ConnectionType is the SSO protocol of a connection.
type ConnectionType string

// Connection protocols.
const (
	ConnSAML ConnectionType = "saml"
	ConnOIDC ConnectionType = "oidc"
)

// Connection is a parent org's SSO connection to its IdP.
type Connection struct {
	ID       string         `json:"id"`
	ParentID string         `json:"parent_id"`
	Type     ConnectionType `json:"type"`
	Name     string         `json:"name"`
	// DefaultOrgID is where JIT provisioning puts new members.
	DefaultOrgID string `json:"default_org_id"`
	// SAML.
	IDPMetadataURL string `json:"metadata_url,omitempty"`
	IDPMetadataXML string `json:"metadata_xml,omitempty"`
	EmailAttribute string `json:"email_attribute,omitempty"`
	GroupAttribute string `json:"group_attribute,omitempty"`
	SignRequests   bool   `json:"sign_requests,omitempty"`
	// OIDC.
	Issuer       string `json:"issuer,omitempty"`
	HostedDomain string `json:"hosted_domain,omitempty"` // Google Workspace: required hd claim
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"-"` // never returned after creation
	// Tested is set after the first successful sign-in through it.
	TestedAt  time.Time `json:"tested_at,omitzero"`
	CreatedAt time.Time `json:"created_at"`
}

// SecretRecord is the stored form of a bearer secret (SCIM token, API key):
// only a hash of the secret is kept.
type SecretRecord struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"` // "scim" or "api"
	Hash       string    `json:"-"`    // hex SHA-256 of the secret
	Name       string    `json:"name"`
	OrgID      string    `json:"org_id,omitempty"`    // SCIM tokens: the org they act on
	ParentID   string    `json:"parent_id,omitempty"` // API keys: the parent org they act on
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// MergeStatus is the state of a merge proposal.
type MergeStatus string

// Merge proposal states.
const (
	MergeProposed  MergeStatus = "proposed"
	MergeApplied   MergeStatus = "applied"
	MergeDeclined  MergeStatus = "declined"
	MergeWithdrawn MergeStatus = "withdrawn"
	MergeExpired   MergeStatus = "expired"
)

// MergeProposal asks that an incoming parent org's orgs join a surviving one.
type MergeProposal struct {
	ID               string      `json:"id"`
	SurvivingParent  string      `json:"surviving_parent_id"`
	IncomingParent   string      `json:"incoming_parent_id"`
	OrgIDs           []string    `json:"org_ids"`
	Status           MergeStatus `json:"status"`
	ProposedBy       string      `json:"proposed_by"`
	SurvivingApprove string      `json:"surviving_approved_by,omitempty"`
	IncomingApprove  string      `json:"incoming_approved_by,omitempty"`
	CreatedAt        time.Time   `json:"created_at"`
	ExpiresAt        time.Time   `json:"expires_at"`
	DecidedAt        time.Time   `json:"decided_at,omitzero"`
}

// Session is a signed-in browser. ID is the opaque cookie value's hash
// key; the cookie holds the secret ID itself.
type Session struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	ParentID  string    `json:"parent_id,omitempty"`
	Method    string    `json:"method"` // saml, oidc, social, magic, test
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	LastSeen  time.Time `json:"last_seen"`
	// Idle is the idle timeout in force when the session was issued.
	Idle      time.Duration `json:"idle"`
	UserAgent string        `json:"user_agent,omitempty"`
	RemoteIP  string        `json:"remote_ip,omitempty"`
}

// AuditEvent records an admin, provisioning or security-relevant action.
type AuditEvent struct {
	ID       string            `json:"id"` // time-sortable
	Time     time.Time         `json:"time"`
	ParentID string            `json:"parent_id,omitempty"`
	OrgID    string            `json:"org_id,omitempty"`
	Actor    string            `json:"actor"` // user email, "scim:<token name>", "api:<key name>", "system"
	Action   string            `json:"action"`
	Target   string            `json:"target,omitempty"`
	Outcome  string            `json:"outcome"` // success, failure
	Reason   string            `json:"reason,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
	RemoteIP string            `json:"remote_ip,omitempty"`
}

// PendingAuth is the state of a sign-in between leaving for the IdP and
// coming back: kept in the store so any instance can finish it.
type PendingAuth struct {
	ID           string    `json:"id"` // state (OIDC) or request ID (SAML)
	ConnectionID string    `json:"connection_id,omitempty"`
	Provider     string    `json:"provider,omitempty"` // social provider name
	Nonce        string    `json:"nonce,omitempty"`
	PKCEVerifier string    `json:"pkce_verifier,omitempty"`
	SAMLRequest  string    `json:"saml_request_id,omitempty"`
	ReturnTo     string    `json:"return_to"`
	Email        string    `json:"email,omitempty"` // login hint
	BrowserKey   string    `json:"browser_key,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	ExpiresAt    time.Time `json:"expires_at"`
}

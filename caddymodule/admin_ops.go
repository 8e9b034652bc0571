package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/store"
)

// The operator's routes on Caddy's admin endpoint, behind `ssogate admin
// …`. The operator acts for any parent org; audit events name the actor
// "operator" (or the --by email of a merge proposal). Where the admin API
// has the logic already (creating an org, proposing a merge), the route
// runs the admin API's handler as an owner of the parent org concerned, so
// validation, audit and mail are the same. Error messages name the CLI's
// flags.

// operatorActor is the audit actor of `ssogate admin` commands.
const operatorActor = "operator"

func badRequest(format string, args ...any) error {
	return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf(format, args...)}
}

func notFound(format string, args ...any) error {
	return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf(format, args...)}
}

// resolveParent finds a parent org by ID or by name (case-insensitive;
// a name several parent orgs share must be given as an ID). flag names the
// CLI flag for messages.
func (a *App) resolveParent(ctx context.Context, flag, ref string) (*store.ParentOrg, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil, badRequest("--%s is required: a parent organization's ID or name (see `ssogate admin parent list`)", flag)
	}
	p, err := a.store.GetParentOrg(ctx, ref)
	if err == nil {
		return p, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	all, err := a.store.ListParentOrgs(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for i := range all {
		if strings.EqualFold(all[i].Name, ref) {
			p = &all[i]
			ids = append(ids, p.ID)
		}
	}
	switch len(ids) {
	case 0:
		return nil, notFound("--%s: no parent organization with ID or name %q (see `ssogate admin parent list`)", flag, ref)
	case 1:
		return p, nil
	}
	return nil, caddy.APIError{HTTPStatus: http.StatusConflict,
		Err: fmt.Errorf("--%s: %d parent organizations are named %q (%s); give the ID", flag, len(ids), ref, strings.Join(ids, ", "))}
}

// ParentSummary is one line of `ssogate admin parent list`.
type ParentSummary struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	CreatedAt   time.Time `json:"created_at"`
	SSOEnforced bool      `json:"sso_enforced"`
	Orgs        int       `json:"orgs"`
	// Owners are the emails of the owners and primary owners (active or
	// invited) of any of its orgs, sorted.
	Owners []string `json:"owners"`
}

// ParentList is the answer of GET /ssogate/parents.
type ParentList struct {
	Parents []ParentSummary `json:"parents"`
}

func (a *App) adminListParents(_ http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	parents, err := a.store.ListParentOrgs(ctx)
	if err != nil {
		return nil, err
	}
	out := ParentList{Parents: make([]ParentSummary, 0, len(parents))}
	emails := map[string]string{} // user ID -> email
	for _, p := range parents {
		orgs, err := a.store.ListOrgs(ctx, p.ID)
		if err != nil {
			return nil, err
		}
		s := ParentSummary{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt, SSOEnforced: p.SSOEnforced, Orgs: len(orgs), Owners: []string{}}
		for _, o := range orgs {
			ms, err := a.store.ListOrgMembers(ctx, o.ID)
			if err != nil {
				return nil, err
			}
			for _, m := range ms {
				if m.Status == store.MemberInactive || !policy.CanAdminister(m.Role) {
					continue
				}
				email, ok := emails[m.UserID]
				if !ok {
					u, err := a.store.GetUser(ctx, m.UserID)
					if errors.Is(err, store.ErrNotFound) {
						continue
					}
					if err != nil {
						return nil, err
					}
					email, emails[m.UserID] = u.Email, u.Email
				}
				s.Owners = append(s.Owners, email)
			}
		}
		slices.Sort(s.Owners)
		s.Owners = slices.Compact(s.Owners)
		out.Parents = append(out.Parents, s)
	}
	return out, nil
}

// OrgCreateRequest is the body of POST /ssogate/orgs. Slug defaults to one
// made from Name.
type OrgCreateRequest struct {
	Parent string `json:"parent"` // ID or name
	Name   string `json:"name"`
	Slug   string `json:"slug,omitempty"`
}

// OrgCreateResult is the new org, as POST /api/v1/orgs shows it, with its
// parent org.
type OrgCreateResult struct {
	orgView
	ParentID   string `json:"parent_id"`
	ParentName string `json:"parent_name"`
}

// adminCreateOrg creates an org under a parent org through the admin
// API's POST /orgs (same checks and audit event).
func (a *App) adminCreateOrg(w http.ResponseWriter, r *http.Request) (any, error) {
	var in OrgCreateRequest
	if err := decodeAdmin(w, r, &in); err != nil {
		return nil, err
	}
	p, err := a.resolveParent(r.Context(), "parent", in.Parent)
	if err != nil {
		return nil, err
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" {
		return nil, badRequest("--name is required: the new org's display name")
	}
	if strings.TrimSpace(in.Slug) == "" {
		if in.Slug = slugFromName(in.Name); in.Slug == "" {
			return nil, badRequest("--name %q gives no usable slug; pass --slug (a-z, 0-9 and '-')", in.Name)
		}
	}
	c := &caller{ParentID: p.ID, Actor: operatorActor, Owner: true}
	res := OrgCreateResult{ParentID: p.ID, ParentName: p.Name}
	err = a.viaAPI(r, c, map[string]string{"slug": in.Slug, "name": in.Name}, (*Handler).apiCreateOrg, &res.orgView)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// slugFromName makes an org slug of a name: lower-case ASCII letters and
// digits, other runs of characters as one '-'; "" if nothing is left.
func slugFromName(name string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(name) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			dash = true
			continue
		}
		if dash && b.Len() > 0 {
			b.WriteByte('-')
		}
		dash = false
		b.WriteRune(c)
	}
	s := b.String()
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.TrimRight(s, "-")
}

// APIKeyRequest is the body of POST /ssogate/api-keys (Name) and of POST
// /ssogate/api-keys/revoke (ID).
type APIKeyRequest struct {
	Parent string `json:"parent"` // ID or name
	Name   string `json:"name,omitempty"`
	ID     string `json:"id,omitempty"`
}

// APIKeyResult is a created API key: the key itself is in this answer only.
type APIKeyResult struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	ParentID  string    `json:"parent_id"`
	CreatedAt time.Time `json:"created_at"`
	APIKey    string    `json:"api_key"`
}

// APIKeyList is the answer of GET /ssogate/api-keys: records only, never
// a key.
type APIKeyList struct {
	ParentID string               `json:"parent_id"`
	Keys     []store.SecretRecord `json:"keys"`
}

// APIKeyRevoked is the answer of POST /ssogate/api-keys/revoke.
type APIKeyRevoked struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	ParentID string `json:"parent_id"`
	Revoked  bool   `json:"revoked"`
}

// adminAPIKeys lists (GET ?parent=) or creates (POST) the admin API keys of
// a parent org. A key acts as an owner of its parent org; only its hash is
// stored (secret kind "api").
func (a *App) adminAPIKeys(w http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	if r.Method == http.MethodGet {
		p, err := a.resolveParent(ctx, "parent", r.URL.Query().Get("parent"))
		if err != nil {
			return nil, err
		}
		keys, err := a.store.ListSecrets(ctx, store.SecretAPI, p.ID)
		if err != nil {
			return nil, err
		}
		if keys == nil {
			keys = []store.SecretRecord{}
		}
		return APIKeyList{ParentID: p.ID, Keys: keys}, nil
	}
	var in APIKeyRequest
	if err := decodeAdmin(w, r, &in); err != nil {
		return nil, err
	}
	p, err := a.resolveParent(ctx, "parent", in.Parent)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(in.Name)
	if name == "" || len(name) > 100 || strings.ContainsAny(name, "\r\n\x00") {
		return nil, badRequest("--name is required: one line of at most 100 characters naming the key's user, e.g. ci")
	}
	key := store.NewSecret("ssogate_key_")
	rec := &store.SecretRecord{Kind: store.SecretAPI, Hash: store.HashSecret(key), Name: name, ParentID: p.ID}
	if err := a.store.CreateSecret(ctx, rec); err != nil {
		return nil, err
	}
	a.audit(r, &store.AuditEvent{ParentID: p.ID, Actor: operatorActor, Action: "api_key.create", Target: name, Outcome: "success",
		Details: map[string]string{"id": rec.ID}})
	return APIKeyResult{ID: rec.ID, Name: rec.Name, ParentID: p.ID, CreatedAt: rec.CreatedAt, APIKey: key}, nil
}

func (a *App) adminRevokeAPIKey(w http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	var in APIKeyRequest
	if err := decodeAdmin(w, r, &in); err != nil {
		return nil, err
	}
	p, err := a.resolveParent(ctx, "parent", in.Parent)
	if err != nil {
		return nil, err
	}
	id := strings.TrimSpace(in.ID)
	if id == "" {
		return nil, badRequest("--id is required: the key's ID (see `ssogate admin api-key list`)")
	}
	keys, err := a.store.ListSecrets(ctx, store.SecretAPI, p.ID)
	if err != nil {
		return nil, err
	}
	name := ""
	for _, k := range keys {
		if k.ID == id {
			name = k.Name
		}
	}
	err = a.store.RevokeSecret(ctx, store.SecretAPI, p.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("--id: no API key %q in parent organization %s (see `ssogate admin api-key list --parent %s`)", id, p.ID, p.ID)
	}
	if err != nil {
		return nil, err
	}
	a.audit(r, &store.AuditEvent{ParentID: p.ID, Actor: operatorActor, Action: "api_key.revoke", Target: name, Outcome: "success",
		Details: map[string]string{"id": id}})
	return APIKeyRevoked{ID: id, Name: name, ParentID: p.ID, Revoked: true}, nil
}

// DomainEntry is a domain claim with the name of its parent org.
type DomainEntry struct {
	store.Domain
	ParentName string `json:"parent_name"`
}

// DomainList is the answer of GET /ssogate/domains.
type DomainList struct {
	Domains []DomainEntry `json:"domains"`
}

// adminListDomains lists the domain claims of one parent org (?parent=)
// or of all, with their status.
func (a *App) adminListDomains(_ http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	var parents []store.ParentOrg
	if ref := r.URL.Query().Get("parent"); ref != "" {
		p, err := a.resolveParent(ctx, "parent", ref)
		if err != nil {
			return nil, err
		}
		parents = []store.ParentOrg{*p}
	} else {
		var err error
		if parents, err = a.store.ListParentOrgs(ctx); err != nil {
			return nil, err
		}
	}
	out := DomainList{Domains: []DomainEntry{}}
	for _, p := range parents {
		list, err := a.store.ListDomainClaims(ctx, p.ID)
		if err != nil {
			return nil, err
		}
		for _, d := range list {
			out.Domains = append(out.Domains, DomainEntry{Domain: d, ParentName: p.Name})
		}
	}
	return out, nil
}

// SessionRevokeRequest is the body of POST /ssogate/sessions/revoke:
// exactly one of User (ID or email) and Parent (ID or name).
type SessionRevokeRequest struct {
	User   string `json:"user,omitempty"`
	Parent string `json:"parent,omitempty"`
}

// SessionRevokeResult says whose sessions ended and how many.
type SessionRevokeResult struct {
	UserID   string `json:"user_id,omitempty"`
	Email    string `json:"email,omitempty"`
	ParentID string `json:"parent_id,omitempty"`
	Revoked  int    `json:"revoked"`
}

// adminRevokeSessions ends, on every instance, the sessions of one user
// (as DELETE /api/v1/sessions does) or of every member of a parent org's
// orgs (as turning SSO on does).
func (a *App) adminRevokeSessions(w http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	var in SessionRevokeRequest
	if err := decodeAdmin(w, r, &in); err != nil {
		return nil, err
	}
	in.User, in.Parent = strings.TrimSpace(in.User), strings.TrimSpace(in.Parent)
	if (in.User == "") == (in.Parent == "") {
		return nil, badRequest("give exactly one of --user (an email or user ID) or --parent (a parent organization's ID or name)")
	}
	if in.Parent != "" {
		p, err := a.resolveParent(ctx, "parent", in.Parent)
		if err != nil {
			return nil, err
		}
		n, err := a.sessions.RevokeParent(ctx, p.ID)
		if err != nil {
			return nil, err
		}
		a.audit(r, &store.AuditEvent{ParentID: p.ID, Actor: operatorActor, Action: "session.revoke_parent", Target: p.Name,
			Outcome: "success", Details: map[string]string{"sessions_ended": strconv.Itoa(n)}})
		return SessionRevokeResult{ParentID: p.ID, Revoked: n}, nil
	}
	u, err := a.store.GetUserByRef(ctx, in.User)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("--user: no user with email or ID %q", in.User)
	}
	if err != nil {
		return nil, err
	}
	n, err := a.sessions.RevokeUser(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	// One event in each parent org the user belongs to, so each one's
	// audit log shows it (or one without a parent org).
	parents, err := a.userParents(ctx, u.ID)
	if err != nil || len(parents) == 0 {
		parents = []string{""}
	}
	for _, pid := range parents {
		a.audit(r, &store.AuditEvent{ParentID: pid, Actor: operatorActor, Action: "session.revoke_all", Target: u.Email,
			Outcome: "success", Details: map[string]string{"sessions_ended": strconv.Itoa(n)}})
	}
	return SessionRevokeResult{UserID: u.ID, Email: u.Email, Revoked: n}, nil
}

// userParents lists the parent orgs of the orgs a user belongs to.
func (a *App) userParents(ctx context.Context, userID string) ([]string, error) {
	ms, err := a.store.ListUserMemberships(ctx, userID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		o, err := a.store.GetOrg(ctx, m.OrgID)
		if err != nil {
			continue
		}
		if !slices.Contains(out, o.ParentID) {
			out = append(out, o.ParentID)
		}
	}
	return out, nil
}

// MergeProposeRequest is the body of POST /ssogate/merge-proposals: the
// orgs of From (incoming) join Into (surviving). By is who proposes, for
// the mails and the audit log (default "operator").
type MergeProposeRequest struct {
	From string `json:"from"`
	Into string `json:"into"`
	By   string `json:"by,omitempty"`
}

// MergeProposeResult is what POST /api/v1/merge-proposals answers, as the
// surviving side sees it.
type MergeProposeResult struct {
	Proposal mergeView `json:"proposal"`
	Notified int       `json:"notified"`
}

// adminProposeMerge proposes a merge through the admin API's POST
// /merge-proposals, acting for the surviving parent org: the same checks
// (one open proposal per pair), mails to both sides' owners and admins,
// and audit event.
func (a *App) adminProposeMerge(w http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	var in MergeProposeRequest
	if err := decodeAdmin(w, r, &in); err != nil {
		return nil, err
	}
	from, err := a.resolveParent(ctx, "from", in.From)
	if err != nil {
		return nil, err
	}
	into, err := a.resolveParent(ctx, "into", in.Into)
	if err != nil {
		return nil, err
	}
	if from.ID == into.ID {
		return nil, badRequest("--from and --into are the same parent organization (%s)", from.ID)
	}
	actor := operatorActor
	if strings.TrimSpace(in.By) != "" {
		email, _, err := policy.NormalizeEmail(in.By)
		if err != nil {
			return nil, badRequest("--by %q: %w", in.By, err)
		}
		actor = email
	}
	orgs, err := a.store.ListOrgs(ctx, from.ID)
	if err != nil {
		return nil, err
	}
	if len(orgs) == 0 {
		return nil, badRequest("--from: parent organization %s (%s) has no orgs to merge", from.ID, from.Name)
	}
	c := &caller{ParentID: into.ID, Actor: actor, Owner: true}
	var res MergeProposeResult
	if err := a.viaAPI(r, c, map[string]string{"incoming_org": orgs[0].Slug}, (*Handler).apiCreateMergeProposal, &res); err != nil {
		return nil, err
	}
	return res, nil
}

// viaAPI runs an admin API handler for caller c with body as its JSON
// request, and decodes its answer into out. An error answer becomes a
// caddy.APIError with the same status and message. The handler runs on a
// Handler for the first site using this app (links in mail point there).
func (a *App) viaAPI(r *http.Request, c *caller, body any, fn func(*Handler, http.ResponseWriter, *http.Request, *caller), out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encoding the request: %w", err)
	}
	h := &Handler{app: a, logger: a.logger.Named("admin"), BasePath: DefaultBasePath}
	if site, err := url.Parse(a.firstSite()); err == nil && site.Host != "" {
		h.origin, h.BasePath = site.Scheme+"://"+site.Host, site.Path
	}
	req := r.Clone(r.Context())
	req.Method = http.MethodPost
	req.Header = http.Header{"Content-Type": {"application/json"}}
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(raw)), int64(len(raw))
	// Services audit with the client address of this request.
	req = req.WithContext(context.WithValue(req.Context(), requestKey{}, req))
	rec := &responseRecorder{header: http.Header{}}
	fn(h, rec, req, c)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status >= 300 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		msg := strings.TrimSpace(rec.body.String())
		if json.Unmarshal(rec.body.Bytes(), &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message
		}
		return caddy.APIError{HTTPStatus: rec.status, Err: errors.New(msg)}
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("decoding the admin API's answer: %w", err)
	}
	return nil
}

// responseRecorder keeps an admin API answer made in-process (viaAPI,
// the console).
type responseRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *responseRecorder) Header() http.Header { return w.header }

func (w *responseRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *responseRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

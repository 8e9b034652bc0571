package caddymodule

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ssogate/ssogate/store"
)

// dmMembership is one org an account on a verified domain belongs to. Orgs
// outside the caller's parent org are shown by name only.
type dmMembership struct {
	Org      *string                `json:"org"` // slug; null outside the parent org
	OrgID    string                 `json:"org_id,omitempty"`
	OrgName  string                 `json:"org_name"`
	InParent bool                   `json:"in_parent"`
	Role     store.Role             `json:"role"`
	Status   store.MembershipStatus `json:"status"`
	Source   string                 `json:"source"`
}

type dmAccount struct {
	Email       string         `json:"email"`
	UserID      string         `json:"user_id"`
	Name        string         `json:"name"`
	CreatedBy   string         `json:"created_by"`
	LastLoginAt *time.Time     `json:"last_login_at"`
	Memberships []dmMembership `json:"memberships"`
}

type dmDomain struct {
	Domain   string      `json:"domain"`
	Accounts []dmAccount `json:"accounts"`
}

// apiDomainMemberships is the View Domain Memberships panel: for every
// domain the caller's parent org verified, every account on it and every
// org each account belongs to, in this parent org or any other. JSON, or
// CSV with Accept: text/csv.
func (h *Handler) apiDomainMemberships(w http.ResponseWriter, r *http.Request, c *caller) {
	out, err := h.domainMemberships(r.Context(), c.ParentID)
	if err != nil {
		h.apiStoreError(w, err)
		return
	}
	// ?domain= narrows the view to one domain, which must be one this
	// parent org verified: nobody else may see who is on it.
	if want := r.URL.Query().Get("domain"); want != "" {
		name, _, _ := strings.Cut(strings.ToLower(strings.TrimSuffix(strings.TrimSpace(want), ".")), "/")
		var only []dmDomain
		for _, d := range out {
			if d.Domain == name {
				only = append(only, d)
			}
		}
		if only == nil {
			writeJSONError(w, http.StatusForbidden, "forbidden", "only owners of the parent organization that verified "+name+" can view its memberships")
			return
		}
		out = only
	}
	if wantsCSV(r) {
		writeDomainMembershipsCSV(w, out)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"domains": out})
}

func (h *Handler) domainMemberships(ctx context.Context, parentID string) ([]dmDomain, error) {
	domains, err := h.app.store.ListVerifiedDomains(ctx, parentID)
	if err != nil {
		return nil, err
	}
	orgs := map[string]*store.Org{} // nil: gone
	org := func(id string) (*store.Org, error) {
		if o, ok := orgs[id]; ok {
			return o, nil
		}
		o, err := h.app.store.GetOrg(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		orgs[id] = o
		return o, nil
	}
	out := make([]dmDomain, 0, len(domains))
	for _, d := range domains {
		users, err := h.app.store.ListUsersByDomain(ctx, d.Name)
		if err != nil {
			return nil, err
		}
		dd := dmDomain{Domain: d.Name, Accounts: make([]dmAccount, 0, len(users))}
		for _, u := range users {
			ms, err := h.app.store.ListUserMemberships(ctx, u.ID)
			if err != nil {
				return nil, err
			}
			a := dmAccount{Email: u.Email, UserID: u.ID, Name: u.Name, CreatedBy: u.CreatedBy, Memberships: make([]dmMembership, 0, len(ms))}
			if !u.LastLoginAt.IsZero() {
				t := u.LastLoginAt.UTC()
				a.LastLoginAt = &t
			}
			for _, m := range ms {
				o, err := org(m.OrgID)
				if err != nil {
					return nil, err
				}
				if o == nil {
					continue
				}
				dm := dmMembership{OrgName: o.Name, InParent: o.ParentID == parentID, Role: m.Role, Status: m.Status, Source: m.Source}
				if dm.InParent {
					slug := o.Slug
					dm.Org, dm.OrgID = &slug, o.ID
				}
				a.Memberships = append(a.Memberships, dm)
			}
			// This parent org's orgs first, then by name.
			slices.SortStableFunc(a.Memberships, func(x, y dmMembership) int {
				if x.InParent != y.InParent {
					if x.InParent {
						return -1
					}
					return 1
				}
				return cmp.Compare(x.OrgName, y.OrgName)
			})
			dd.Accounts = append(dd.Accounts, a)
		}
		slices.SortStableFunc(dd.Accounts, func(x, y dmAccount) int { return cmp.Compare(x.Email, y.Email) })
		out = append(out, dd)
	}
	return out, nil
}

// wantsCSV tells whether the client asked for text/csv (Accept), or
// format=csv in the query.
func wantsCSV(r *http.Request) bool {
	if r.URL.Query().Get("format") == "csv" {
		return true
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/csv" {
			return true
		}
	}
	return false
}

var domainMembershipsCSVHeader = []string{"domain", "email", "name", "created_by", "last_login_at", "org_name", "in_parent_org", "role", "status", "source"}

// writeDomainMembershipsCSV writes one row per membership, and one row
// with empty org columns for an account without memberships.
func writeDomainMembershipsCSV(w http.ResponseWriter, domains []dmDomain) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="domain-memberships.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write(domainMembershipsCSVHeader)
	for _, d := range domains {
		for _, a := range d.Accounts {
			last := ""
			if a.LastLoginAt != nil {
				last = a.LastLoginAt.Format(time.RFC3339)
			}
			base := []string{d.Domain, csvCell(a.Email), csvCell(a.Name), csvCell(a.CreatedBy), last}
			if len(a.Memberships) == 0 {
				_ = cw.Write(append(base, "", "", "", "", ""))
				continue
			}
			for _, m := range a.Memberships {
				in := "false"
				if m.InParent {
					in = "true"
				}
				_ = cw.Write(append(slices.Clone(base), csvCell(m.OrgName), in, string(m.Role), string(m.Status), csvCell(m.Source)))
			}
		}
	}
	cw.Flush()
}

// csvCell keeps a spreadsheet from reading a cell as a formula: names and
// emails come from users and IdPs, so a leading =, +, -, @, tab or CR gets
// a ' in front (the OWASP advice for CSV injection).
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

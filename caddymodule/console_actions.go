package caddymodule

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/ssogate/ssogate/policy"
	"github.com/ssogate/ssogate/store"
)

// consoleAction turns one console form into one admin API call.
type consoleAction struct {
	section string // the section the form is on
	form    string // the form's name, where a refusal is shown
	// check refuses obviously incomplete forms before any call ("" = fine).
	check func(url.Values) string
	call  func(url.Values) (method, path string, body any)
	// back adds query parameters to the page shown after success.
	back func(url.Values) map[string]string
	// done, when set, shows the answer at once instead of redirecting
	// (for what is shown only once).
	done func(*consoleReq, map[string]any)
}

func needs(fields ...string) func(url.Values) string {
	return func(f url.Values) string {
		for i := 0; i+1 < len(fields); i += 2 {
			if formValue(f, fields[i]) == "" {
				return errRequired(fields[i+1])
			}
		}
		return ""
	}
}

// pathArg is a form value as one path segment. ("." and ".." make the
// router redirect; the console takes anything but a 2xx as a refusal.)
func pathArg(f url.Values, k string) string { return url.PathEscape(formValue(f, k)) }

// consoleActions are the console's forms by name (the URL is
// <console>/actions/<name>).
var consoleActions = map[string]consoleAction{
	"domain-add": {section: "", form: "domain-add", check: needs("domain", "your company's domain, like example.com"),
		call: func(f url.Values) (string, string, any) {
			return http.MethodPost, "/domains", map[string]string{"domain": formValue(f, "domain")}
		}},
	"domain-verify": {section: "", form: "domains", check: needs("domain", "a domain"),
		call: func(f url.Values) (string, string, any) {
			return http.MethodPost, "/domains/" + pathArg(f, "domain") + "/verify", nil
		}},
	"domain-delete": {section: "", form: "domains", check: needs("domain", "a domain"),
		call: func(f url.Values) (string, string, any) {
			return http.MethodDelete, "/domains/" + pathArg(f, "domain"), nil
		}},
	"connection-add": {section: "", form: "connection-add", check: needs("name", "a name for this connection, like Okta"),
		call: func(f url.Values) (string, string, any) {
			in := map[string]any{"id": formValue(f, "id"), "type": formValue(f, "type"), "name": formValue(f, "name"),
				"default_org": formValue(f, "default_org")}
			switch formValue(f, "type") {
			case "saml":
				in["metadata_url"] = formValue(f, "metadata_url")
				in["metadata_xml"] = formValue(f, "metadata_xml")
				in["email_attribute"] = formValue(f, "email_attribute")
				in["group_attribute"] = formValue(f, "group_attribute")
				in["sign_requests"] = f.Get("sign_requests") == "on"
			case "oidc":
				in["issuer"] = formValue(f, "issuer")
				in["client_id"] = formValue(f, "client_id")
				in["client_secret"] = formValue(f, "client_secret")
				in["hosted_domain"] = formValue(f, "hosted_domain")
			}
			return http.MethodPost, "/connections", in
		}},
	"connection-delete": {section: "", form: "connections", check: needs("id", "a connection"),
		call: func(f url.Values) (string, string, any) {
			return http.MethodDelete, "/connections/" + pathArg(f, "id"), nil
		}},
	"sso": {section: "", form: "sso",
		check: func(f url.Values) string {
			if f.Get("enforced") == "true" && f.Get("confirm") != "yes" {
				return "Tick the box to confirm: turning SSO on ends every current session of your members."
			}
			return ""
		},
		call: func(f url.Values) (string, string, any) {
			return http.MethodPut, "/sso", map[string]bool{"enforced": f.Get("enforced") == "true"}
		}},
	"settings": {section: "/scim", form: "settings",
		call: func(f url.Values) (string, string, any) {
			return http.MethodPatch, "/settings", map[string]bool{"allow_unverified_scim_domains": f.Get("allow_unverified_scim_domains") == "on"}
		}},
	"member-add": {section: "/members", form: "member-add", check: needs("org", "an organization", "email", "the person's email address"),
		call: func(f url.Values) (string, string, any) {
			return http.MethodPost, orgPath(f, "/members"), map[string]string{"email": formValue(f, "email"), "role": formValue(f, "role")}
		}},
	"member-role": {section: "/members", form: "members", check: needs("org", "an organization", "user", "a member", "role", "a role"),
		call: func(f url.Values) (string, string, any) {
			return http.MethodPatch, orgPath(f, "/members/"+pathArg(f, "user")), map[string]string{"role": formValue(f, "role")}
		}},
	"member-remove": {section: "/members", form: "members", check: needs("org", "an organization", "user", "a member"),
		call: func(f url.Values) (string, string, any) {
			return http.MethodDelete, orgPath(f, "/members/"+pathArg(f, "user")), nil
		}},
	"scim-token-create": {section: "/scim", form: "scim-token-create", check: needs("org", "an organization", "name", "a name for the token, like Okta"),
		call: func(f url.Values) (string, string, any) {
			return http.MethodPost, orgPath(f, "/scim-tokens"), map[string]string{"name": formValue(f, "name")}
		},
		done: func(cr *consoleReq, out map[string]any) {
			cr.page.Secret = out
			cr.page.Flash = "Token created. Copy it now: it is shown only once."
		}},
	"scim-token-revoke": {section: "/scim", form: "scim-tokens", check: needs("org", "an organization", "id", "a token"),
		call: func(f url.Values) (string, string, any) {
			return http.MethodDelete, orgPath(f, "/scim-tokens/"+pathArg(f, "id")), nil
		}},
	"group-mappings": {section: "/group-mappings", form: "group-mappings", check: needs("org", "an organization"),
		call: func(f url.Values) (string, string, any) {
			return http.MethodPut, orgPath(f, "/group-mappings"), map[string]bool{"enabled": f.Get("enabled") == "true", "force": f.Get("force") == "on"}
		}},
	"org-create": {section: "/organizations", form: "org-create", check: needs("name", "the organization's name", "slug", "a short name (slug)"),
		call: func(f url.Values) (string, string, any) {
			return http.MethodPost, "/orgs", map[string]string{"name": formValue(f, "name"), "slug": formValue(f, "slug")}
		}},
	"merge-propose": {section: "/organizations", form: "merge-propose", check: needs("incoming_org", "the slug of an organization in the other parent organization"),
		call: func(f url.Values) (string, string, any) {
			return http.MethodPost, "/merge-proposals", map[string]string{"incoming_org": formValue(f, "incoming_org")}
		}},
	"merge-approve":  mergeDecision("approve"),
	"merge-decline":  mergeDecision("decline"),
	"merge-withdraw": mergeDecision("withdraw"),
	"sessions-revoke": {section: "/sessions", form: "sessions", check: needs("user", "the person's email address"),
		call: func(f url.Values) (string, string, any) {
			return http.MethodDelete, "/sessions?" + url.Values{"user": {formValue(f, "user")}}.Encode(), nil
		},
		back: func(f url.Values) map[string]string { return map[string]string{"user": formValue(f, "user")} }},
}

func mergeDecision(verb string) consoleAction {
	return consoleAction{section: "/organizations", form: "merges", check: needs("id", "a proposal"),
		call: func(f url.Values) (string, string, any) {
			return http.MethodPost, "/merge-proposals/" + pathArg(f, "id") + "/" + verb, nil
		}}
}

// consoleFlash is the message shown after each action succeeded.
var consoleFlash = map[string]string{
	"domain-add":        "Domain added. Publish the TXT record shown below, then click Refresh.",
	"domain-verify":     "Domain status refreshed.",
	"domain-delete":     "Domain removed.",
	"connection-add":    "Connection saved. Test it with Test sign-in before turning SSO on.",
	"connection-delete": "Connection deleted.",
	"connection-test":   "Test sign-in succeeded: the connection is marked tested.",
	"sso":               "Single sign-on setting saved.",
	"settings":          "Setting saved.",
	"member-add":        "Member added. They get an email with a sign-in link.",
	"member-role":       "Role changed.",
	"member-remove":     "Removed from team. Their sessions have ended.",
	"scim-token-revoke": "Token revoked. The IdP can no longer use it.",
	"group-mappings":    "Advanced Group Mappings setting saved.",
	"org-create":        "Organization created.",
	"merge-propose":     "Merge proposed. Owners and admins of both parent organizations were emailed.",
	"merge-approve":     "Approved. The merge completes when both sides have approved.",
	"merge-decline":     "Merge proposal declined.",
	"merge-withdraw":    "Merge proposal withdrawn.",
	"sessions-revoke":   "Sessions ended.",
}

// Section loaders: each reads what its page shows through the API.

func loadDomainsSSO(cr *consoleReq) {
	cr.load("domains", "/domains")
	cr.load("connections", "/connections")
	cr.load("sso", "/sso")
	cr.load("orgs", "/orgs")
	// The "Add SSO" forms carry the parent org's next connection id, so
	// the values to paste into the IdP are known before its metadata
	// exists (and stay the same when the page is reloaded).
	for _, typ := range []string{"saml", "oidc"} {
		cr.load("setup_"+typ, "/connections/setup?type="+typ)
	}
}

func loadMembers(cr *consoleReq) {
	if cr.page.Org == "" {
		return
	}
	out := cr.load("members", "/orgs/"+url.PathEscape(cr.page.Org)+"/members")
	if out == nil {
		return
	}
	// The roles this caller may give, for the pickers.
	mine := store.RoleOwner
	if !cr.c.Owner {
		mine = store.RoleAdmin
	}
	for _, r := range []store.Role{store.RoleMember, store.RoleAdmin, store.RoleOwner} {
		if policy.MayManage(mine, policy.ActInvite, r, r) {
			cr.page.Roles = append(cr.page.Roles, string(r))
		}
	}
	cr.page.Data["me"] = cr.c.UserID
}

func loadSCIM(cr *consoleReq) {
	cr.load("settings", "/settings")
	if cr.page.Org != "" {
		cr.load("tokens", "/orgs/"+url.PathEscape(cr.page.Org)+"/scim-tokens")
	}
}

func loadMappings(cr *consoleReq) {
	if cr.page.Org == "" {
		return
	}
	base := "/orgs/" + url.PathEscape(cr.page.Org) + "/group-mappings"
	cr.load("mappings", base)
	cr.load("preview", base+"/preview")
}

func loadDomainMemberships(cr *consoleReq) {
	cr.load("dm", "/domain-memberships")
}

func loadOrganizations(cr *consoleReq) {
	cr.load("orgs", "/orgs")
	cr.load("merges", "/merge-proposals")
}

func loadAudit(cr *consoleReq) {
	q := url.Values{}
	for _, k := range []string{"action", "actor", "cursor"} {
		if v := cr.r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
			cr.page.Form[k] = v
		}
	}
	q.Set("limit", strconv.Itoa(50))
	cr.load("audit", "/audit-events?"+q.Encode())
}

func loadSessions(cr *consoleReq) {
	u := cr.r.URL.Query().Get("user")
	if u == "" {
		return
	}
	cr.page.Form["user"] = u
	cr.load("sessions", "/sessions?"+url.Values{"user": {u}}.Encode())
}

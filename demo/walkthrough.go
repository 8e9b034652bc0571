package demo

import (
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// The walkthrough is data: Print renders it for people, and the demo's
// test walks the same steps (running each rendered curl line and playing
// each browser action) so the printed text cannot drift from what works.

// Step is one part of the walkthrough, in the order of the seed guide.
type Step struct {
	Title   string
	Text    string // what the step shows, printed before the actions
	Actions []Action
}

// Action is one thing to do: a command to run or something to do in a
// browser window.
type Action struct {
	// Note, if set, is printed before the action.
	Note string
	// Variant limits the action to one SSO protocol: "" for both, "saml"
	// (printed as the main path) or "oidc" (printed as the alternative).
	Variant string
	Request *Request
	Browser *Browse
}

// Request is one HTTP request, printed as a curl line.
type Request struct {
	Method string
	URL    string
	// Auth is a shell variable holding a bearer token ("KEY",
	// "SCIM_TOKEN"), sent as Authorization: Bearer $VAR.
	Auth string
	// ContentType and Body: a JSON (or SCIM) body.
	ContentType string
	Body        string
	// Form is an application/x-www-form-urlencoded body (curl -d k=v).
	Form url.Values
	// SaveAs, if set, is a shell variable to set from the string field
	// SaveField of the JSON answer.
	SaveAs, SaveField string
	// Want is the expected HTTP status; WantBody lists strings the answer
	// contains.
	Want     int
	WantBody []string
}

// Browse is something a person does in their own browser window.
type Browse struct {
	Who  string // email of the person whose window this is
	Kind BrowseKind
	// Via is how SignIn signs in: "link" (emailed sign-in link, from the
	// outbox) or "sso" (through the IdP).
	Via string
	// Want is what the demo app shows afterwards: this person with these
	// orgs (X-Ssogate-Orgs).
	Want *Identity
}

// BrowseKind is what a browser action does.
type BrowseKind int

// Browser actions.
const (
	// SignIn opens the app, enters Who's email on the sign-in page and
	// signs in (Via).
	SignIn BrowseKind = iota
	// SignOut opens /.ssogate/logout.
	SignOut
	// Reload opens the app again: with Want, the session is still there
	// (with those orgs); without, the session has ended and the sign-in
	// page shows.
	Reload
	// SignInRefused tries SignIn through SSO; the IdP refuses.
	SignInRefused
)

// Identity is who the demo app shows.
type Identity struct {
	Email string
	Orgs  string // X-Ssogate-Orgs, e.g. "acme:admin,research:member"
}

// Person is a user at both demo IdPs.
type Person struct {
	Email      string
	GivenName  string
	FamilyName string
	Groups     []string
}

// People are the demo IdPs' users; they all have the password Password.
var People = []Person{
	{"olivia@acme.test", "Olivia", "Owens", []string{"ssogate-acme-owner", "ssogate-research-owner"}},
	{"alice@acme.test", "Alice", "Archer", []string{"ssogate-acme-admin", "ssogate-research-member"}},
	{"bob@acme.test", "Bob", "Baker", []string{"ssogate-acme-member"}},
	{"carol@acme.test", "Carol", "Chen", []string{"ssogate-acme-member", "ssogate-research-member"}},
}

// Demo constants: the domain, the seeded parent org and its owner, the
// IdPs' password and the OIDC client.
const (
	Domain           = "acme.test"
	ParentName       = "Acme"
	OrgSlug          = "acme"
	SecondOrgSlug    = "research"
	SecondOrgName    = "Acme Research"
	Owner            = "olivia@acme.test"
	Password         = "demo"
	OIDCClientID     = "ssogate-demo"
	OIDCClientSecret = "demo-client-secret"
)

// Env is where the demo's parts run and what was seeded: what the
// walkthrough's commands need.
type Env struct {
	Gateway  string // the gateway's site URL, http://127.0.0.1:<port>
	App      string // the demo app, directly
	SAML     string // the SAML IdP's base URL
	OIDC     string // the OIDC provider's issuer
	Tools    string // the demo tools (DNS records, outbox, people)
	DNS      string // host:port of the DNS server (UDP and TCP)
	Admin    string // Caddy's admin endpoint, host:port
	Store    string // a description of the store
	Dir      string // the demo's working folder
	APIKey   string // the admin API key bootstrap made for the parent org
	LoginURL string // the owner's one-time sign-in link from bootstrap
	Log      string // where Caddy's and ssogate's logs go
}

func (e Env) api(path string) string { return e.Gateway + "/.ssogate/api/v1" + path }

// Steps is the walkthrough for env.
func Steps(e Env) []Step {
	jsonCT := "application/json"
	owner, alice, bob, carol := Owner, "alice@acme.test", "bob@acme.test", "carol@acme.test"
	return []Step{{
		Title: "Sign in as the owner, before SSO",
		Text: Owner + " is the primary owner of the parent org " + ParentName + ". " + Domain + " is not captured yet, so ssogate " +
			"signs her in with an emailed link; mail goes to the outbox. The demo app then shows the identity headers and " +
			"the JWT it verified with the gateway's keys (" + e.Gateway + "/.ssogate/.well-known/jwks.json). " +
			"Opened directly at " + e.App + "/, without ssogate, it has nothing to trust.",
		Actions: []Action{{Browser: &Browse{Who: owner, Kind: SignIn, Via: "link", Want: &Identity{owner, "acme:primary_owner"}}}},
	}, {
		Title: "Capture " + Domain,
		Text: "Add the domain, publish the TXT record it asks for, and verify. The demo DNS server answers from a small table: " +
			"the second command fills it with the pending challenge (or use the form at " + e.Tools + "/dns). " +
			"ssogate's check is a real DNS lookup against " + e.DNS + ".",
		Actions: []Action{
			{Request: &Request{Method: "POST", URL: e.api("/domains"), Auth: "KEY", ContentType: jsonCT,
				Body: `{"domain":"` + Domain + `"}`, Want: 201, WantBody: []string{`"status":"pending"`, `"txt_name":"_ssogate-challenge.` + Domain + `"`}}},
			{Note: "publish the record:", Request: &Request{Method: "POST", URL: e.Tools + "/dns", Form: url.Values{"domain": {Domain}},
				Want: 200, WantBody: []string{"_ssogate-challenge." + Domain}}},
			{Note: "the \"Pending\" refresh button (ssogate also re-checks every few seconds):", Request: &Request{Method: "POST",
				URL: e.api("/domains/" + Domain + "/verify"), Auth: "KEY", Want: 200, WantBody: []string{`"status":"verified"`}}},
		},
	}, {
		Title: "Add SSO",
		Text: "Connect the IdP. The answer's \"setup\" holds what a real IdP needs pasted in (acs_url and entity_id, or " +
			"redirect_uri); the demo IdPs already trust this gateway. Groups come in the eduPersonAffiliation attribute (SAML) " +
			"or the groups claim (OIDC).",
		Actions: []Action{
			{Variant: "saml", Request: &Request{Method: "POST", URL: e.api("/connections"), Auth: "KEY", ContentType: jsonCT,
				Body: `{"type":"saml","name":"Demo SAML IdP","metadata_url":"` + e.SAML + `/metadata","group_attribute":"eduPersonAffiliation","default_org":"` + OrgSlug + `"}`,
				Want: 201, WantBody: []string{`"acs_url"`}}},
			{Variant: "oidc", Request: &Request{Method: "POST", URL: e.api("/connections"), Auth: "KEY", ContentType: jsonCT,
				Body: `{"type":"oidc","name":"Demo OIDC provider","issuer":"` + e.OIDC + `","client_id":"` + OIDCClientID +
					`","client_secret":"` + OIDCClientSecret + `","default_org":"` + OrgSlug + `"}`,
				Want: 201, WantBody: []string{`"redirect_uri"`}}},
		},
	}, {
		Title: "Test SSO sign-in",
		Text: "Sign out, then sign in again with the work email: SSO is offered, and the IdP sends you back. " +
			"The first SSO sign-in marks the connection tested; SSO cannot be enforced before that.",
		Actions: []Action{
			{Browser: &Browse{Who: owner, Kind: SignOut}},
			{Browser: &Browse{Who: owner, Kind: SignIn, Via: "sso", Want: &Identity{owner, "acme:primary_owner"}}},
		},
	}, {
		Title: "Enforce SSO",
		Text: "Turning SSO on ends every session of the parent org's members. From now on an " + Domain +
			" email goes straight to the IdP (which may still remember you and send you right back).",
		Actions: []Action{
			{Request: &Request{Method: "PUT", URL: e.api("/sso"), Auth: "KEY", ContentType: jsonCT, Body: `{"enforced":true}`,
				Want: 200, WantBody: []string{`"sessions_ended"`}}},
			{Browser: &Browse{Who: owner, Kind: Reload}},
			{Browser: &Browse{Who: owner, Kind: SignIn, Via: "sso", Want: &Identity{owner, "acme:primary_owner"}}},
		},
	}, {
		Title: "Provision a user with SCIM",
		Text: "Make a SCIM token for the org (shown once) and create a user the way an IdP would. " + carol +
			" is a member before she ever signs in.",
		Actions: []Action{
			{Request: &Request{Method: "POST", URL: e.api("/orgs/" + OrgSlug + "/scim-tokens"), Auth: "KEY", ContentType: jsonCT,
				Body: `{"name":"Demo IdP"}`, SaveAs: "SCIM_TOKEN", SaveField: "token", Want: 201, WantBody: []string{`"scim_base_url"`}}},
			{Request: &Request{Method: "POST", URL: e.Gateway + "/.ssogate/scim/v2/Users", Auth: "SCIM_TOKEN", ContentType: "application/scim+json",
				Body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + carol +
					`","name":{"givenName":"Carol","familyName":"Chen"},"emails":[{"value":"` + carol + `","primary":true}],"active":true}`,
				Want: 201, WantBody: []string{`"userName":"` + carol + `"`}}},
			{Request: &Request{Method: "GET", URL: e.api("/orgs/" + OrgSlug + "/members"), Auth: "KEY", Want: 200,
				WantBody: []string{`"email":"` + carol + `"`, `"source":"scim"`}}},
			{Browser: &Browse{Who: carol, Kind: SignIn, Via: "sso", Want: &Identity{carol, "acme:member"}}},
		},
	}, {
		Title: "Turn on Advanced Group Mappings",
		Text: "With mappings on, membership and role in an org come only from the IdP groups ssogate-<org>-<role>. " +
			"The preview shows who would gain or lose access, and whether an org would be left without an owner " +
			"(Olivia's and Carol's groups are known from their sign-ins).",
		Actions: []Action{
			{Request: &Request{Method: "GET", URL: e.api("/orgs/" + SecondOrgSlug + "/group-mappings/preview"), Auth: "KEY",
				Want: 200, WantBody: []string{`"lockout":false`}}},
			{Request: &Request{Method: "PUT", URL: e.api("/orgs/" + OrgSlug + "/group-mappings"), Auth: "KEY", ContentType: jsonCT,
				Body: `{"enabled":true}`, Want: 200}},
			{Request: &Request{Method: "PUT", URL: e.api("/orgs/" + SecondOrgSlug + "/group-mappings"), Auth: "KEY", ContentType: jsonCT,
				Body: `{"enabled":true}`, Want: 200}},
			{Note: "Carol's groups now put her in research too:", Browser: &Browse{Who: carol, Kind: Reload, Want: &Identity{carol, "acme:member,research:member"}}},
			{Note: "one sign-in grants each org its mapped role:", Browser: &Browse{Who: alice, Kind: SignIn, Via: "sso", Want: &Identity{alice, "acme:admin,research:member"}}},
		},
	}, {
		Title: "Remove a member and watch the session end",
		Text: "First revoke the person's access at the IdP (the demo removes them from both IdPs). They stay signed in " +
			"here until you also remove them from the team; then their session ends at once.",
		Actions: []Action{
			{Browser: &Browse{Who: bob, Kind: SignIn, Via: "sso", Want: &Identity{bob, "acme:member"}}},
			{Request: &Request{Method: "DELETE", URL: e.Tools + "/people/" + bob, Want: 204}},
			{Note: "still signed in:", Browser: &Browse{Who: bob, Kind: Reload, Want: &Identity{bob, "acme:member"}}},
			{Note: "Remove from team:", Request: &Request{Method: "DELETE", URL: e.api("/orgs/" + OrgSlug + "/members/" + bob), Auth: "KEY", Want: 204}},
			{Browser: &Browse{Who: bob, Kind: Reload}},
			{Browser: &Browse{Who: bob, Kind: SignInRefused}},
		},
	}, {
		Title: "See every account on your domain",
		Text:  "View Domain Memberships lists every account on " + Domain + " and every org it belongs to.",
		Actions: []Action{
			{Request: &Request{Method: "GET", URL: e.api("/domain-memberships"), Auth: "KEY", Want: 200,
				WantBody: []string{`"email":"` + carol + `"`}}},
		},
	}}
}

// Curl renders the request as a shell command line.
func (r *Request) Curl() string {
	var b strings.Builder
	b.WriteString("curl -s")
	if r.Method != "GET" && !(r.Method == "POST" && (r.Body != "" || r.Form != nil)) {
		b.WriteString(" -X " + r.Method)
	}
	if r.Auth != "" {
		b.WriteString(` -H "Authorization: Bearer $` + r.Auth + `"`)
	}
	if r.Body != "" {
		b.WriteString(" -H " + shellQuote("Content-Type: "+r.ContentType))
		b.WriteString(" -d " + shellQuote(r.Body))
	}
	for _, k := range slices.Sorted(maps.Keys(r.Form)) {
		for _, v := range r.Form[k] {
			b.WriteString(" -d " + shellQuote(url.QueryEscape(k)+"="+url.QueryEscape(v)))
		}
	}
	if r.Want == 204 {
		b.WriteString(` -o /dev/null -w '%{http_code}\n'`)
	}
	b.WriteString(" " + r.URL)
	if r.SaveAs != "" {
		return r.SaveAs + "=$(" + b.String() + ` | sed -n 's/.*"` + r.SaveField + `":"\([^"]*\)".*/\1/p'); echo "` +
			r.SaveAs + "=$" + r.SaveAs + `"`
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Describe renders a browser action for people.
func (b *Browse) Describe(e Env) string {
	who := "[" + strings.Split(b.Who, "@")[0] + "'s window] "
	switch b.Kind {
	case SignOut:
		return who + "Sign out: open " + e.Gateway + "/.ssogate/logout"
	case Reload:
		if b.Want == nil {
			return who + "Reload " + e.Gateway + "/ : the session has ended, and the sign-in page shows."
		}
		return who + "Reload " + e.Gateway + "/ : the app shows " + b.Want.Email + " with orgs " + b.Want.Orgs + "."
	case SignInRefused:
		return who + "Try to sign in again at " + e.Gateway + "/ as " + b.Who + ": the IdP refuses (the person is gone there)."
	}
	s := who + "Open " + e.Gateway + "/ and enter " + b.Who + ". "
	if b.Via == "link" {
		s += "Open the mail outbox " + e.Tools + "/mail, the newest message to " + b.Who + ", its link, and press \"Sign in\"."
	} else {
		s += "Choose \"Continue with single sign-on\" if offered; at the IdP sign in as " + b.Who + " with password \"" + Password + "\"."
	}
	if b.Want != nil {
		s += " The app shows " + b.Want.Email + " with orgs " + b.Want.Orgs + "."
	}
	return s
}

// Print writes the demo's overview and the walkthrough.
func Print(w io.Writer, e Env) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("ssogate demo is running: everything on 127.0.0.1, store %s. Ctrl-C stops it all.\n\n", e.Store)
	p("  %-28s the gateway: the demo app behind ssogate\n", e.Gateway+"/")
	p("  %-28s the demo app directly (no ssogate, nothing to trust)\n", e.App+"/")
	p("  %-28s SAML IdP (crewjam/saml samlidp)\n", e.SAML+"/")
	p("  %-28s OIDC provider\n", e.OIDC+"/")
	p("  %-28s demo tools: DNS records (/dns), mail outbox (/mail)\n", e.Tools+"/")
	p("  %-28s DNS server for %s (UDP and TCP)\n", e.DNS, Domain)
	p("  %-28s Caddy's admin endpoint (ssogate admin … --address %s)\n", e.Admin, e.Admin)
	p("\nParent org %q with the orgs %s and %s; primary owner %s.\n", ParentName, OrgSlug, SecondOrgSlug, Owner)
	p("People at both IdPs, password %q (each in their own browser window, e.g. a private one):\n", Password)
	for _, pp := range People {
		p("  %-18s %s\n", pp.Email, strings.Join(pp.Groups, ", "))
	}
	p("\nEvery admin step below can also be done in the admin console, signed in as %s:\n  %s/.ssogate/settings/identity\n", Owner, e.Gateway)
	p("\nThe admin API key of %s's parent org, for the commands below (run them in one shell):\n\n  KEY=%s\n", ParentName, e.APIKey)
	if e.LoginURL != "" {
		p("\n%s's one-time sign-in link from bootstrap (instead of step 1): %s\n", Owner, e.LoginURL)
	}
	for i, s := range Steps(e) {
		p("\n%d. %s\n", i+1, s.Title)
		for _, line := range wrap(s.Text, 92) {
			p("   %s\n", line)
		}
		for _, a := range s.Actions {
			if a.Note != "" {
				p("   %s\n", a.Note)
			}
			if a.Variant == "oidc" {
				p("   or, with OIDC instead of SAML:\n")
			}
			switch {
			case a.Request != nil:
				p("   $ %s\n", a.Request.Curl())
			case a.Browser != nil:
				p("   %s\n", a.Browser.Describe(e))
			}
		}
	}
	p("\nMore in README.md. Caddy's and ssogate's logs (audit events too): %s.\n", e.Log)
}

// wrap breaks text into lines of at most width characters.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

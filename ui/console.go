package ui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// ConsolePage is the data of every admin console page.
type ConsolePage struct {
	Title      string
	Section    string // the section's path under the console ("" = first)
	Origin     string // the site's origin (scheme://host[:port])
	BasePath   string
	ConsoleURL string
	Email      string // who is signed in
	ParentName string
	Owner      bool // owners see every section; admins Members only
	CSRF       string
	Nav        []NavItem
	// Orgs the visitor manages, and the one picked (per-org sections).
	Orgs  []OrgChoice
	Org   string
	Roles []string // roles the visitor may give
	// Flash is the message after an action; Errors are refusals by form
	// name ("page" for the whole page); Form the values to fill back in.
	Flash     string
	Errors    map[string]string
	ErrorForm string
	Form      map[string]string
	// Data holds the admin API answers the page shows, by name.
	Data map[string]any
	// Secret is shown once (a new SCIM token).
	Secret map[string]any
}

// NavItem is one entry of the console's navigation.
type NavItem struct {
	URL, Title string
	Current    bool
}

// OrgChoice is one org in the org picker.
type OrgChoice struct{ Slug, Name string }

//go:embed console/console.js
var ConsoleJS []byte

//go:embed console/*.html
var consoleFS embed.FS

var consoleFuncs = template.FuncMap{
	// when formats an RFC 3339 time from the API for people.
	"when": func(v any) string {
		s, _ := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || t.IsZero() {
			return "—"
		}
		return t.UTC().Format("Jan 2, 2006 15:04 UTC")
	},
	// list turns a JSON array (or nothing) into a slice for range/len.
	"list": func(v any) []any {
		l, _ := v.([]any)
		return l
	},
	// str is a JSON value as a string ("" when missing).
	"str": func(v any) string {
		switch x := v.(type) {
		case nil:
			return ""
		case string:
			return x
		case float64:
			return fmt.Sprint(x)
		case bool:
			if x {
				return "true"
			}
			return "false"
		}
		return fmt.Sprint(v)
	},
	// keys lists a JSON object's keys in order.
	"keys": func(v any) []string {
		m, _ := v.(map[string]any)
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	},
	"get": func(v any, k string) any {
		m, _ := v.(map[string]any)
		return m[k]
	},
	"title": func(s string) string {
		s = strings.ReplaceAll(s, "_", " ")
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"has":      func(m map[string]string, k string) bool { _, ok := m[k]; return ok },
	"contains": func(l []string, s string) bool { return slices.Contains(l, s) },
	// at walks JSON objects: at .Data "domains" "domains".
	"at": func(v any, path ...string) any {
		for _, k := range path {
			m, _ := v.(map[string]any)
			v = m[k]
		}
		return v
	},
	"truthy": func(v any) bool {
		switch x := v.(type) {
		case bool:
			return x
		case string:
			return x != ""
		case float64:
			return x != 0
		case []any:
			return len(x) > 0
		case map[string]any:
			return len(x) > 0
		}
		return false
	},
}

var consolePages = template.Must(template.New("").Funcs(consoleFuncs).ParseFS(consoleFS, "console/*.html"))

// RenderConsole writes a console page. Console pages may run the
// console's own script (copy buttons); nothing else.
func RenderConsole(w http.ResponseWriter, status int, p *ConsolePage) error {
	var buf bytes.Buffer
	if err := consolePages.ExecuteTemplate(&buf, "console.html", p); err != nil {
		return fmt.Errorf("ui: rendering console %q: %w", p.Section, err)
	}
	SecurityHeaders(w.Header())
	// Only the console's own script may run (not any script of the app
	// behind the gateway on the same origin). Only the first page has a
	// form answered with a redirect to an IdP (Test sign-in).
	script := "script-src " + p.Origin + p.ConsoleURL + "/console.js; "
	csp := strings.Replace(SecurityPolicy, "default-src 'none'; ", "default-src 'none'; "+script, 1)
	if p.Section == "" {
		csp = strings.Replace(cspIdPForms, "default-src 'none'; ", "default-src 'none'; "+script, 1)
	}
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// AuditNext is the URL of the audit log's next page, keeping the filter.
func (p *ConsolePage) AuditNext(cursor string) string {
	q := url.Values{"cursor": {cursor}}
	for _, k := range []string{"action", "actor"} {
		if v := p.Form[k]; v != "" {
			q.Set(k, v)
		}
	}
	return "?" + q.Encode()
}

package scim

import (
	"net/url"
	"testing"
)

// FuzzSCIMRequests throws arbitrary filters, PATCH documents and resource
// bodies at the real handler: it must never panic, never answer 5xx, and
// always answer JSON (env.do fails the test on a non-JSON body).
func FuzzSCIMRequests(f *testing.F) {
	f.Add(`userName eq "a@acme.com"`, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","value":{"active":"False"}}]}`, `{"userName":"a@acme.com"}`)
	f.Add(`emails[type eq "work"].value eq "x"`, `{"Operations":[{"op":"remove","path":"members[value eq \"x\"]"}]}`, `{"displayName":"ssogate-acme-admin","members":[{"value":"nope"}]}`)
	f.Add(`(userName eq "a") or not (externalId pr)`, `{"Operations":[{"op":"add","path":"emails[type eq \"work\"].value","value":"b@acme.com"}]}`, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"urn:ietf:params:scim:schemas:core:2.0:User:userName":"c@acme.com"}`)
	f.Add(`"`, `{`, `[]`)
	e := newEnv(f)
	user := e.createUser(e.a.token, "fuzz-target@acme.com")
	f.Fuzz(func(t *testing.T, filter, patch, body string) {
		e.t = t
		for _, r := range []response{
			e.do("GET", "/Users?filter="+url.QueryEscape(filter), e.a.token, nil),
			e.do("GET", "/Groups?filter="+url.QueryEscape(filter), e.a.token, nil),
			e.do("PATCH", "/Users/"+user, e.a.token, patch),
			e.do("POST", "/Users", e.a.token, body),
			e.do("POST", "/Groups", e.a.token, body),
		} {
			if r.status >= 500 {
				t.Fatalf("status %d for filter %q patch %q body %q:\n%s", r.status, filter, patch, body, r.raw)
			}
		}
	})
}

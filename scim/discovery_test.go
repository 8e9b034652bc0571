package scim

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
)

// ServiceProviderConfig tells the truth about what the server does.
func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	res := e.do("GET", "/ServiceProviderConfig", e.a.token, nil)
	want := map[string]any{
		"patch":                 map[string]any{"supported": true},
		"bulk":                  map[string]any{"supported": false},
		"filter":                map[string]any{"supported": true, "maxResults": float64(maxResults)},
		"changePassword":        map[string]any{"supported": false},
		"sort":                  map[string]any{"supported": false},
		"etag":                  map[string]any{"supported": false},
		"authenticationSchemes": []any{map[string]any{"type": "oauthbearertoken", "primary": true}},
	}
	if err := match("", want, res.body); err != nil || res.status != 200 {
		t.Errorf("%d %v\n%s", res.status, err, res.raw)
	}
	res = e.do("GET", "/ResourceTypes", e.a.token, nil)
	if err := match("", map[string]any{"totalResults": 2.0, "Resources": []any{
		map[string]any{"name": "User", "endpoint": "/Users", "schemaExtensions": []any{map[string]any{"schema": uriEnterprise}}},
		map[string]any{"name": "Group", "endpoint": "/Groups"},
	}}, res.body); err != nil {
		t.Error(err)
	}
	res = e.do("GET", "/Schemas", e.a.token, nil)
	if n := len(asList(res.body["Resources"])); res.status != 200 || n < 3 {
		t.Errorf("schemas: %d, %d", res.status, n)
	}
	res = e.do("GET", "/Schemas/"+uriEnterprise, e.a.token, nil)
	if res.status != 200 || res.body["id"] != uriEnterprise {
		t.Errorf("enterprise schema: %d", res.status)
	}
	// Lists are never null.
	for _, p := range []string{"/ResourceTypes?count=0", "/Schemas?filter=" + url.QueryEscape(`id eq "nope"`), "/Users", "/Groups",
		"/Users?count=0", "/Groups?filter=" + url.QueryEscape(`displayName eq "x"`)} {
		res := e.do("GET", p, e.a.token, nil)
		if r, ok := res.body["Resources"].([]any); !ok || res.status != 200 {
			t.Errorf("%s: Resources %v (%d)", p, r, res.status)
		}
	}
	// Unauthenticated discovery is refused too.
	if res := e.do("GET", "/ServiceProviderConfig", "", nil); res.status != 401 {
		t.Errorf("unauthenticated: %d", res.status)
	}
}

func TestFiltersAndPaging(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 5 {
		extra := map[string]any{"externalId": fmt.Sprintf("ext-%d", i),
			"name": map[string]any{"givenName": "G", "familyName": fmt.Sprintf("F%d", i%2)}}
		if i == 3 {
			extra["active"] = false
			extra[uriEnterprise] = map[string]any{"department": "Sales"}
		}
		res := e.do("POST", "/Users", e.a.token, userBody(fmt.Sprintf("u%d@acme.com", i), extra))
		if res.status != 201 {
			t.Fatalf("%d %s", res.status, res.raw)
		}
		ids = append(ids, res.body["id"].(string))
	}
	res := e.do("POST", "/Groups", e.a.token, map[string]any{"schemas": []string{uriGroup}, "displayName": "eng",
		"externalId": "g-ext", "members": []any{map[string]any{"value": ids[4]}}})
	if res.status != 201 {
		t.Fatalf("%d %s", res.status, res.raw)
	}
	group := res.body["id"].(string)
	users := func(filter string, want ...int) {
		t.Helper()
		res := e.do("GET", "/Users?filter="+url.QueryEscape(filter), e.a.token, nil)
		var got []string
		for _, r := range asList(res.body["Resources"]) {
			got = append(got, r.(map[string]any)["id"].(string))
		}
		var exp []string
		for _, i := range want {
			exp = append(exp, ids[i])
		}
		if res.status != 200 || !slices.Equal(sortedSet(got), sortedSet(exp)) || res.body["totalResults"] != float64(len(want)) {
			t.Errorf("%s: %d %v, want %v", filter, res.status, got, exp)
		}
	}
	users(`userName eq "U1@ACME.COM"`, 1)
	users(`externalId eq "ext-2"`, 2)
	users(`externalId eq "EXT-2"`) // externalId is case-exact
	users(`emails.value eq "u3@acme.com"`, 3)
	users(`emails[type eq "work" and value eq "u0@acme.com"]`, 0)
	users(`id eq "`+ids[4]+`"`, 4)
	users(`userName eq "u0@acme.com" or externalId eq "ext-4"`, 0, 4)
	users(`userName eq "u1@acme.com" and active eq false`)
	users(`emails.value eq "u3@acme.com" and active eq false`, 3)
	users(`name.familyName eq "F1"`, 1, 3)
	users(`userName sw "u" and not (active eq true)`, 3)
	users(`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales"`, 3)
	users(`department eq "Sales"`, 3)
	users(`meta.created gt "2000-01-01T00:00:00Z"`, 0, 1, 2, 3, 4)
	users(`groups.display eq "eng"`, 4)
	users(`title pr`)
	users(`userName eq "nobody@acme.com"`)

	groups := func(filter string, n int) {
		t.Helper()
		res := e.do("GET", "/Groups?filter="+url.QueryEscape(filter), e.a.token, nil)
		if res.status != 200 || res.body["totalResults"] != float64(n) {
			t.Errorf("%s: %d %s", filter, res.status, res.raw)
		}
	}
	groups(`displayName eq "ENG"`, 1)
	groups(`externalId eq "g-ext"`, 1)
	groups(`id eq "`+group+`"`, 1)
	groups(`members.value eq "`+ids[4]+`"`, 1)
	groups(`displayName sw "x"`, 0)

	// Paging: 1-based startIndex, count, totalResults.
	var seen []string
	for start := 1; start <= 6; start += 2 {
		res := e.do("GET", fmt.Sprintf("/Users?startIndex=%d&count=2", start), e.a.token, nil)
		rs := asList(res.body["Resources"])
		if res.body["totalResults"] != 5.0 || res.body["startIndex"] != float64(start) || len(rs) != min(2, 5-start+1) ||
			res.body["itemsPerPage"] != float64(len(rs)) {
			t.Errorf("page %d: %s", start, res.raw)
		}
		for _, r := range rs {
			seen = append(seen, r.(map[string]any)["id"].(string))
		}
	}
	if !slices.Equal(sortedSet(seen), sortedSet(ids)) || len(seen) != 5 {
		t.Errorf("pages gave %v", seen)
	}
	res = e.do("GET", "/Users?filter="+url.QueryEscape(`userName sw "u"`)+"&startIndex=5&count=10", e.a.token, nil)
	if res.body["totalResults"] != 5.0 || len(asList(res.body["Resources"])) != 1 {
		t.Errorf("filtered page: %s", res.raw)
	}
	res = e.do("POST", "/Users/.search", e.a.token, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
		"filter": `userName eq "u2@acme.com"`})
	if res.status != 200 || res.body["totalResults"] != 1.0 {
		t.Errorf(".search: %d %s", res.status, res.raw)
	}
}

// last_used_at is written at most once a minute per token.
func TestTokenTouch(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	e := newEnv(t, func(e *env) { e.st.Now = func() time.Time { return time.Unix(0, now.Load()).UTC() } })
	ctx := context.Background()
	lastUsed := func() time.Time {
		recs, err := e.st.ListSecrets(ctx, store.SecretSCIM, e.a.org.ID)
		must(t, err)
		return recs[0].LastUsedAt
	}
	e.do("GET", "/Users", e.a.token, nil)
	first := lastUsed()
	if !first.Equal(time.Unix(0, now.Load())) {
		t.Fatalf("last used %v", first)
	}
	now.Add(int64(30 * time.Second))
	e.do("GET", "/Users", e.a.token, nil)
	if !lastUsed().Equal(first) {
		t.Errorf("touched again within a minute")
	}
	now.Add(int64(31 * time.Second))
	e.do("GET", "/Users", e.a.token, nil)
	if !lastUsed().After(first) {
		t.Errorf("not touched after a minute")
	}
}

// Equality filters are index lookups: the reads they make do not grow
// with the number of members.
func TestFilterUsesIndex(t *testing.T) {
	e := newEnv(t)
	reads := func(filter string) int64 {
		start := e.probe.reads.Load()
		res := e.do("GET", "/Users?filter="+url.QueryEscape(filter), e.a.token, nil)
		if res.status != 200 || res.body["totalResults"] != 1.0 {
			t.Fatalf("%s: %s", filter, res.raw)
		}
		return e.probe.reads.Load() - start
	}
	seed(t, e, 0, 10)
	small := []int64{reads(`userName eq "user5@acme.com"`), reads(`externalId eq "ext-5"`), reads(`emails.value eq "user5@acme.com"`)}
	seed(t, e, 10, 200)
	large := []int64{reads(`userName eq "user5@acme.com"`), reads(`externalId eq "ext-5"`), reads(`emails.value eq "user5@acme.com"`)}
	if !slices.Equal(small, large) {
		t.Errorf("reads per filter grew with members: %v -> %v", small, large)
	}
	scanSmall := reads(`name.givenName eq "Given5"`)
	seed(t, e, 200, 300)
	if scanLarge := reads(`name.givenName eq "Given5"`); scanLarge <= scanSmall {
		t.Errorf("a scan should read more with more members: %d -> %d", scanSmall, scanLarge)
	}
}

// seed adds members [from, to) to org A straight through the store.
func seed(t testing.TB, e *env, from, to int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < to; i++ {
		u := &store.User{Email: fmt.Sprintf("user%d@acme.com", i), GivenName: fmt.Sprintf("Given%d", i), CreatedBy: "scim"}
		must(t, e.st.CreateUser(ctx, u))
		must(t, e.st.PutMembership(ctx, &store.Membership{OrgID: e.a.org.ID, UserID: u.ID, Role: store.RoleMember,
			Source: "scim", SCIMUserName: u.Email, SCIMExternalID: fmt.Sprintf("ext-%d", i)}))
	}
}

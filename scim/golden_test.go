package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/store"
)

// Golden sequences: testdata/<idp>/NN_*.json, one request per file, run in
// order against one server. "${name}" in a step is replaced by a value an
// earlier step captured; the expected response is a subset of the actual
// one (see match).

type goldenStep struct {
	Name    string `json:"name"`
	Source  string `json:"source"` // the public doc example it follows
	Tenant  string `json:"tenant"` // "a" (default) or "b"
	Request struct {
		Method string            `json:"method"`
		Path   string            `json:"path"`
		Query  map[string]string `json:"query"`
		Body   json.RawMessage   `json:"body"`
	} `json:"request"`
	Status   int               `json:"status"`
	Response json.RawMessage   `json:"response"`
	Capture  map[string]string `json:"capture"`
	Store    storeExpect       `json:"store"`
}

type storeExpect struct {
	Membership *struct {
		User           string `json:"user"`
		Absent         bool   `json:"absent"`
		Status         string `json:"status"`
		Role           string `json:"role"`
		Source         string `json:"source"`
		SCIMUserName   string `json:"scim_user_name"`
		SCIMExternalID string `json:"scim_external_id"`
	} `json:"membership"`
	User *struct {
		ID         string            `json:"id"`
		Email      string            `json:"email"`
		Name       string            `json:"name"`
		GivenName  string            `json:"given_name"`
		FamilyName string            `json:"family_name"`
		Attributes map[string]string `json:"attributes"`
	} `json:"user"`
	Group *struct {
		ID          string   `json:"id"`
		Absent      bool     `json:"absent"`
		DisplayName string   `json:"display_name"`
		Members     []string `json:"members"`
	} `json:"group"`
	// Revoked lists the users whose sessions the step ended; a step that
	// says nothing must end none.
	Revoked []string `json:"revoked"`
	// GroupsChanged, when present, lists the users OnGroupsChanged got.
	GroupsChanged *[]string `json:"groups_changed"`
}

func TestGoldenOkta(t *testing.T)  { runGolden(t, "okta") }
func TestGoldenEntra(t *testing.T) { runGolden(t, "entra") }

func runGolden(t *testing.T, idp string) {
	files, err := filepath.Glob(filepath.Join("testdata", idp, "*.json"))
	must(t, err)
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	slices.Sort(files)
	e := newEnv(t)
	vars := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		must(t, err)
		text := string(raw)
		for k, v := range vars {
			text = strings.ReplaceAll(text, "${"+k+"}", v)
		}
		var st goldenStep
		if err := json.Unmarshal([]byte(text), &st); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ok := t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			e.runStep(t, &st, vars)
		})
		if !ok {
			t.FailNow() // later steps depend on this one
		}
	}
}

func (e *env) runStep(t *testing.T, st *goldenStep, vars map[string]string) {
	tok := e.a.token
	if st.Tenant == "b" {
		tok = e.b.token
	}
	e.revoked.take()
	e.groups.take()
	path := st.Request.Path
	if len(st.Request.Query) > 0 {
		q := url.Values{}
		for k, v := range st.Request.Query {
			q.Set(k, v)
		}
		path += "?" + q.Encode()
	}
	var body any
	if len(st.Request.Body) > 0 {
		body = []byte(st.Request.Body)
	}
	res := e.do(st.Request.Method, path, tok, body)
	if res.status != st.Status {
		t.Fatalf("%s %s: status %d, want %d\n%s", st.Request.Method, path, res.status, st.Status, res.raw)
	}
	if len(st.Response) > 0 {
		var want any
		must(t, json.Unmarshal(st.Response, &want))
		var got any
		if err := json.Unmarshal(res.raw, &got); err != nil {
			t.Fatalf("response is not JSON: %s", res.raw)
		}
		if err := match("", want, got); err != nil {
			t.Fatalf("response: %v\n%s", err, res.raw)
		}
	}
	for name, p := range st.Capture {
		v, err := lookup(res.body, p)
		if err != nil {
			t.Fatalf("capture %s: %v", name, err)
		}
		vars[name] = fmt.Sprint(v)
	}
	e.checkStore(t, &st.Store, vars)
}

func (e *env) checkStore(t *testing.T, x *storeExpect, vars map[string]string) {
	ctx := context.Background()
	sub := func(s string) string {
		for k, v := range vars {
			s = strings.ReplaceAll(s, "${"+k+"}", v)
		}
		return s
	}
	if got, want := sortedSet(e.revoked.take()), sortedSet(mapStrings(x.Revoked, sub)); !slices.Equal(got, want) {
		t.Errorf("revoked %v, want %v", got, want)
	}
	if x.GroupsChanged != nil {
		if got, want := sortedSet(e.groups.take()), sortedSet(mapStrings(*x.GroupsChanged, sub)); !slices.Equal(got, want) {
			t.Errorf("OnGroupsChanged users %v, want %v", got, want)
		}
	}
	if m := x.Membership; m != nil {
		got, err := e.st.GetMembership(ctx, e.a.org.ID, sub(m.User))
		switch {
		case m.Absent:
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("membership of %s: %v, want none", m.User, err)
			}
		case err != nil:
			t.Errorf("membership of %s: %v", m.User, err)
		default:
			for _, c := range [][3]string{{"status", string(got.Status), m.Status}, {"role", string(got.Role), m.Role},
				{"source", got.Source, m.Source}, {"scim_user_name", got.SCIMUserName, m.SCIMUserName},
				{"scim_external_id", got.SCIMExternalID, m.SCIMExternalID}} {
				if c[2] != "" && c[1] != c[2] {
					t.Errorf("membership %s = %q, want %q", c[0], c[1], c[2])
				}
			}
		}
	}
	if u := x.User; u != nil {
		got, err := e.st.GetUser(ctx, sub(u.ID))
		must(t, err)
		for _, c := range [][3]string{{"email", got.Email, u.Email}, {"name", got.Name, u.Name},
			{"given_name", got.GivenName, u.GivenName}, {"family_name", got.FamilyName, u.FamilyName}} {
			if c[2] != "" && c[1] != c[2] {
				t.Errorf("user %s = %q, want %q", c[0], c[1], c[2])
			}
		}
		for k, v := range u.Attributes {
			if got.Attributes[k] != sub(v) {
				t.Errorf("user attribute %s = %q, want %q", k, got.Attributes[k], v)
			}
		}
	}
	if g := x.Group; g != nil {
		got, err := e.st.GetGroup(ctx, e.a.org.ID, sub(g.ID))
		switch {
		case g.Absent:
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("group %s: %v, want none", g.ID, err)
			}
		case err != nil:
			t.Errorf("group %s: %v", g.ID, err)
		default:
			if g.DisplayName != "" && got.DisplayName != g.DisplayName {
				t.Errorf("group name %q, want %q", got.DisplayName, g.DisplayName)
			}
			if g.Members != nil && !slices.Equal(sortedSet(got.Members), sortedSet(mapStrings(g.Members, sub))) {
				t.Errorf("group members %v, want %v", got.Members, mapStrings(g.Members, sub))
			}
		}
	}
}

func mapStrings(in []string, fn func(string) string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, fn(s))
	}
	return out
}

func sortedSet(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// match reports whether want is a subset of got: objects need want's keys
// (the value "$absent" requires the key to be missing, "$any" any value),
// arrays need the same length with every wanted element matching a
// distinct element in any order; scalars must be equal.
func match(path string, want, got any) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: got %v, want an object", path, got)
		}
		for k, wv := range w {
			gv, present := g[k]
			switch {
			case wv == "$absent":
				if present {
					return fmt.Errorf("%s.%s: got %v, want no such key", path, k, gv)
				}
			case !present:
				return fmt.Errorf("%s.%s: missing", path, k)
			case wv == "$any":
			default:
				if err := match(path+"."+k, wv, gv); err != nil {
					return err
				}
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok {
			return fmt.Errorf("%s: got %v, want an array", path, got)
		}
		if len(g) != len(w) {
			return fmt.Errorf("%s: got %d elements, want %d: %v", path, len(g), len(w), got)
		}
		used := make([]bool, len(g))
	next:
		for i, wv := range w {
			for j, gv := range g {
				if !used[j] && match("", wv, gv) == nil {
					used[j] = true
					continue next
				}
			}
			return fmt.Errorf("%s[%d]: no element matches %v in %v", path, i, wv, got)
		}
		return nil
	default:
		if !reflect.DeepEqual(want, got) {
			return fmt.Errorf("%s: got %#v, want %#v", path, got, want)
		}
		return nil
	}
}

// lookup follows a dotted path ("Resources.0.id") into decoded JSON.
func lookup(v any, path string) (any, error) {
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[part]; !ok {
				return nil, fmt.Errorf("no %q in %v", part, x)
			}
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil, fmt.Errorf("bad index %q", part)
			}
			v = x[i]
		default:
			return nil, fmt.Errorf("cannot follow %q into %v", part, v)
		}
	}
	return v, nil
}

func TestMatch(t *testing.T) {
	var got any
	must(t, json.Unmarshal([]byte(`{"a":1,"b":[{"v":"x","t":1},{"v":"y"}],"c":null,"d":[]}`), &got))
	for want, ok := range map[string]bool{
		`{"a":1}`: true, `{"a":2}`: false, `{"b":[{"v":"y"},{"v":"x"}]}`: true, `{"b":[{"v":"x"}]}`: false,
		`{"z":"$absent"}`: true, `{"a":"$absent"}`: false, `{"c":"$any"}`: true, `{"z":"$any"}`: false,
		`{"d":[]}`: true, `{"c":[]}`: false, `{"b":[{"v":"x"},{"v":"x"}]}`: false,
	} {
		var w any
		must(t, json.Unmarshal([]byte(want), &w))
		if err := match("", w, got); (err == nil) != ok {
			t.Errorf("match(%s) = %v, want ok=%v", want, err, ok)
		}
	}
}

package caddymodule_test

import (
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/gatewaytest"
	"github.com/ssogate/ssogate/internal/redistest"
)

const testSecret = "test-secret-0123456789abcdefghijklmnopqrstuvwxyz"

func redisGlobal(url string) string {
	return gatewaytest.Global("ssogate {\n\t\tstorage redis " + url + "\n\t\tsecret " + testSecret + "\n\t\thealth_interval 100ms\n\t}")
}

// Two instances on one Redis: a session issued on A passes on B, and a
// revocation on A is refused by B within 100 ms.
func TestRedisTwoInstancesRevocation(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := upstream(t)
	a := gatewaytest.Start(t, redisGlobal(rs.URL())+siteBlock(up.URL), gatewaytest.Options{})
	b := gatewaytest.Start(t, redisGlobal(rs.URL())+siteBlock(up.URL), gatewaytest.Options{})

	owner := signIn(t, a, "olga@acme.com", "acme", "owner", true)
	var lat []time.Duration
	for i := 0; i < 5; i++ {
		bob := signIn(t, a, "bob@acme.com", "acme", "member", false)
		for _, g := range []*gatewaytest.Gateway{a, b} {
			// B's cookie must work although B never issued it (the site
			// URLs differ by port, but the cookie value is what counts).
			resp := get(t, g.URL, "/", bob.Cookie, nil)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("signed in on A, refused by %s: %d", g.URL, resp.StatusCode)
			}
		}
		req, _ := http.NewRequest("DELETE", a.URL+"/.ssogate/api/v1/sessions?user=bob@acme.com", nil)
		req.Header.Set("Authorization", "Bearer "+owner.APIKey)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if body := gatewaytest.ReadBody(t, resp); resp.StatusCode != 200 {
			t.Fatalf("revoke on A: %d %s", resp.StatusCode, body)
		}
		for {
			r := get(t, b.URL, "/", bob.Cookie, nil)
			r.Body.Close()
			if r.StatusCode == http.StatusFound {
				break
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("B still accepts a session revoked on A after 2s (status %d)", r.StatusCode)
			}
			time.Sleep(2 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("revocation seen by B after (incl. the API call): %v", lat)
	if worst := lat[len(lat)-1]; worst > 100*time.Millisecond {
		t.Fatalf("revocation took %v to reach B, want < 100ms", worst)
	}
}

// Fail closed: with Redis stopped, even a cached session gets 503; after
// Redis is back the gateway recovers without a restart.
func TestRedisDownFailsClosed(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := upstream(t)
	g := gatewaytest.Start(t, redisGlobal(rs.URL())+siteBlock(up.URL), gatewaytest.Options{})
	alice := signIn(t, g, "alice@acme.com", "acme", "member", false)
	if r := get(t, g.URL, "/", alice.Cookie, nil); r.StatusCode != 200 {
		t.Fatalf("before outage: %d", r.StatusCode)
	}
	rs.Stop()
	waitStatus(t, g, alice.Cookie, http.StatusServiceUnavailable, 5*time.Second)
	resp := get(t, g.URL, "/.ssogate/healthz", "", nil)
	if body := gatewaytest.ReadBody(t, resp); resp.StatusCode != 503 || !strings.Contains(body, "unavailable") {
		t.Fatalf("healthz during outage: %d %s", resp.StatusCode, body)
	}
	if !g.Logged("store unreachable; failing closed") {
		t.Fatal("the outage was not logged")
	}
	rs.Restart()
	// The restarted Redis is empty (no persistence in tests): the old
	// session is gone, so recovery shows as a redirect to sign in, and a
	// new sign-in passes.
	waitStatus(t, g, alice.Cookie, http.StatusFound, 10*time.Second)
	again := signIn(t, g, "alice@acme.com", "acme", "member", false)
	if r := get(t, g.URL, "/", again.Cookie, nil); r.StatusCode != 200 {
		t.Fatalf("after recovery: %d", r.StatusCode)
	}
}

func waitStatus(t *testing.T, g *gatewaytest.Gateway, cookie string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := 0
	for time.Now().Before(deadline) {
		r := get(t, g.URL, "/", cookie, map[string]string{"Accept": "text/html"})
		r.Body.Close()
		if last = r.StatusCode; last == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("status %d, want %d within %v", last, want, within)
}

package scim

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkProvision creates users through the HTTP API, one per op.
func BenchmarkProvision(b *testing.B) {
	e := newEnv(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		res := e.do("POST", "/Users", e.a.token, userBody(fmt.Sprintf("bench%d@acme.com", i), nil))
		if res.status != http.StatusCreated {
			b.Fatalf("%d %s", res.status, res.raw)
		}
		i++
	}
}

// BenchmarkFilterUserName looks users up by userName in orgs of 1k and 10k
// members: an index lookup, so the time per op stays flat.
func BenchmarkFilterUserName(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		e := newEnv(b)
		seed(b, e, 0, n)
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				q := url.QueryEscape(fmt.Sprintf(`userName eq "user%d@acme.com"`, i%n))
				res := e.do("GET", "/Users?filter="+q, e.a.token, nil)
				if res.status != http.StatusOK || res.body["totalResults"] != 1.0 {
					b.Fatalf("%d %s", res.status, res.raw)
				}
				i++
			}
		})
	}
}

// TestProvision10k provisions 10,000 users through the HTTP API (2,000
// under the race detector) in under a minute, as an IdP's first sync would.
func TestProvision10k(t *testing.T) {
	n := 10000
	if raceEnabled {
		n = 2000
	}
	const workers = 4
	e := newEnv(t)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				res := e.do("POST", "/Users", e.a.token, userBody(fmt.Sprintf("load%d@acme.com", i), map[string]any{
					"externalId": fmt.Sprintf("load-%d", i)}))
				if res.status != http.StatusCreated {
					errs <- fmt.Sprintf("user %d: %d %s", i, res.status, res.raw)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Fatal(msg)
	}
	elapsed := time.Since(start)
	t.Logf("provisioned %d users in %v (%.0f/s)", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	if elapsed > 60*time.Second {
		t.Errorf("provisioning %d users took %v, want under 60s", n, elapsed)
	}
	ms, err := e.st.ListOrgMembers(context.Background(), e.a.org.ID)
	must(t, err)
	if len(ms) != n {
		t.Fatalf("%d members, want %d", len(ms), n)
	}
	res := e.do("GET", "/Users?filter="+url.QueryEscape(fmt.Sprintf(`externalId eq "load-%d"`, n-1)), e.a.token, nil)
	if res.body["totalResults"] != 1.0 {
		t.Errorf("lookup after load: %s", res.raw)
	}
	res = e.do("GET", "/Users?startIndex=9990&count=100", e.a.token, nil)
	if res.body["totalResults"] != float64(n) {
		t.Errorf("totalResults %v", res.body["totalResults"])
	}
}

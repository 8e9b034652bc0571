package caddymodule_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/dnstest"
	"github.com/ssogate/ssogate/internal/gatewaytest"
	"github.com/ssogate/ssogate/internal/redistest"
	"github.com/ssogate/ssogate/internal/smtptest"
)

// parentsGateway is a gateway with a real DNS server for domain
// verification and a real SMTP server for mail.
func parentsGateway(t *testing.T) (*gatewaytest.Gateway, *dnstest.Server, *smtptest.Server) {
	t.Helper()
	dns := dnstest.Start(t)
	smtp := smtptest.Start(t)
	up := upstream(t)
	global := gatewaytest.Global("ssogate {\n\t\tdns_resolver " + dns.Addr +
		"\n\t\tmail smtp://" + smtp.Addr + "?starttls=none {\n\t\t\tfrom \"Acme SSO <sso@acme.test>\"\n\t\t}\n\t}")
	return gatewaytest.Start(t, global+siteBlock(up.URL), gatewaytest.Options{}), dns, smtp
}

// orgSlugs lists the slugs GET /orgs answers, in order.
func orgSlugs(t *testing.T, api apiClient) []string {
	t.Helper()
	code, body := api.do("GET", "/orgs", "", "")
	if code != 200 {
		t.Fatalf("GET /orgs: %d %v", code, body)
	}
	var out []string
	for _, o := range body["orgs"].([]any) {
		out = append(out, o.(map[string]any)["slug"].(string))
	}
	return out
}

// domainStates maps each domain GET /domains lists to its status.
func domainStates(t *testing.T, api apiClient) map[string]string {
	t.Helper()
	code, body := api.do("GET", "/domains", "", "")
	if code != 200 {
		t.Fatalf("GET /domains: %d %v", code, body)
	}
	out := map[string]string{}
	for _, d := range body["domains"].([]any) {
		m := d.(map[string]any)
		out[m["domain"].(string)] = m["status"].(string)
	}
	return out
}

func propose(t *testing.T, api apiClient, incoming string) string {
	t.Helper()
	code, body := api.do("POST", "/merge-proposals", "application/json", `{"incoming_org":"`+incoming+`"}`)
	if code != 201 {
		t.Fatalf("propose %s: %d %v", incoming, code, body)
	}
	return body["proposal"].(map[string]any)["id"].(string)
}

// auditLines counts the audit log lines with all of subs.
func auditLines(output string, subs ...string) int {
	n := 0
	for _, line := range strings.Split(output, "\n") {
		ok := strings.Contains(line, `"msg":"audit"`)
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			n++
		}
	}
	return n
}

func TestParentsOrgsAPI(t *testing.T) {
	t.Parallel()
	g, _, _ := parentsGateway(t)
	acme := apiClient{t, g.URL, signIn(t, g, "owner@acme.com", "acme", "owner", true).APIKey}
	signIn(t, g, "bob@acme.com", "acme", "member", false)
	signIn(t, g, "owner@rival.com", "rival", "owner", false)

	for _, tc := range []struct {
		body, code string
		status     int
	}{
		{`{"slug":"bad slug","name":"x"}`, "invalid_slug", 400},
		{`{"slug":"-dash","name":"x"}`, "invalid_slug", 400},
		{`{"slug":"","name":"x"}`, "invalid_slug", 400},
		{`{"slug":"rival","name":"Taken"}`, "slug_taken", 409},
		{`{"slug":"ok","name":"` + strings.Repeat("n", 201) + `"}`, "invalid_name", 400},
		{`{"slug":"ok","owner":"x"}`, "invalid_json", 400},
	} {
		if code, body := acme.do("POST", "/orgs", "application/json", tc.body); code != tc.status || errCode(body) != tc.code {
			t.Errorf("POST /orgs %s: %d %v, want %d %s", tc.body, code, body, tc.status, tc.code)
		}
	}
	code, o := acme.do("POST", "/orgs", "application/json", `{"slug":"Acme-Labs","name":"Acme Labs"}`)
	if code != 201 || o["slug"] != "acme-labs" || o["name"] != "Acme Labs" || o["id"] == "" {
		t.Fatalf("create org: %d %v", code, o)
	}
	code, list := acme.do("GET", "/orgs", "", "")
	if code != 200 {
		t.Fatalf("list orgs: %d %v", code, list)
	}
	orgs := list["orgs"].([]any)
	if len(orgs) != 2 {
		t.Fatalf("orgs: %s", jsonOf(list))
	}
	first, second := orgs[0].(map[string]any), orgs[1].(map[string]any)
	if first["slug"] != "acme" || first["member_count"] != 2.0 || first["group_mappings"] != false ||
		second["slug"] != "acme-labs" || second["member_count"] != 0.0 {
		t.Fatalf("orgs: %s", jsonOf(list))
	}
	// The new org is manageable at once (its members API knows it).
	if code, body := acme.do("POST", "/orgs/acme-labs/members", "application/json", `{"email":"carol@carol.example","role":"admin"}`); code != 201 {
		t.Fatalf("invite into the new org: %d %v", code, body)
	}
	if auditLines(g.SettledOutput(), `"action":"org.create"`, `"target":"acme-labs"`) != 1 {
		t.Fatal("no org.create audit line")
	}
}

// The whole life cycle: propose (mails to both sides' owners and admins),
// approve by one side, approve twice, approve by the other side: applied.
func TestMergeLifecycle(t *testing.T) {
	t.Parallel()
	g, dns, smtp := parentsGateway(t)
	surv := apiClient{t, g.URL, signIn(t, g, "owner@surv.com", "surv", "owner", true).APIKey}
	inc := apiClient{t, g.URL, signIn(t, g, "owner@inc-corp.com", "inc", "owner", true).APIKey}
	other := apiClient{t, g.URL, signIn(t, g, "owner@other.com", "other", "owner", true).APIKey}
	incMember := signInUnder(t, g, "member@inc-corp.com", "inc-two", "member", "inc", false)
	for api, email := range map[apiClient]string{surv: "admin@surv.com", inc: "admin@inc-corp.com"} {
		org := "surv"
		if api == inc {
			org = "inc"
		}
		if code, body := api.do("POST", "/orgs/"+org+"/members", "application/json", `{"email":"`+email+`","role":"admin"}`); code != 201 {
			t.Fatalf("add admin %s: %d %v", email, code, body)
		}
	}
	smtp.WaitFor(t, 2, 10*time.Second) // the two invitations
	verifiedDomain(t, inc, dns, "inc-corp.com")

	// Refusals: unknown org, own parent org, bad body.
	if code, body := surv.do("POST", "/merge-proposals", "application/json", `{"incoming_org":"nope"}`); code != 404 || errCode(body) != "not_found" {
		t.Fatalf("unknown org: %d %v", code, body)
	}
	if code, body := surv.do("POST", "/merge-proposals", "application/json", `{"incoming_org":"surv"}`); code != 400 || errCode(body) != "same_parent" {
		t.Fatalf("own org: %d %v", code, body)
	}
	if code, body := surv.do("POST", "/merge-proposals", "application/json", `{}`); code != 400 {
		t.Fatalf("empty body: %d %v", code, body)
	}

	code, body := surv.do("POST", "/merge-proposals", "application/json", `{"incoming_org":"inc"}`)
	if code != 201 || body["notified"] != 4.0 {
		t.Fatalf("propose: %d %v", code, body)
	}
	p := body["proposal"].(map[string]any)
	id := p["id"].(string)
	if p["status"] != "proposed" || p["side"] != "surviving" || p["proposed_by"] != "api:test" || p["expires_at"] == nil {
		t.Fatalf("proposal: %s", jsonOf(p))
	}
	// The surviving side sees the incoming orgs by name only.
	if s := jsonOf(p["orgs"]); s != `[{"name":"inc"},{"name":"inc-two"}]` {
		t.Fatalf("orgs as the surviving side sees them: %s", s)
	}
	if code, body := surv.do("POST", "/merge-proposals", "application/json", `{"incoming_org":"inc-two"}`); code != 409 || errCode(body) != "proposal_exists" {
		t.Fatalf("second open proposal: %d %v", code, body)
	}

	// Mail to every owner and admin of both sides, one message each, with
	// the console link; none to the plain member.
	msgs := smtp.WaitFor(t, 6, 10*time.Second)
	var to []string
	for _, m := range msgs {
		if !strings.Contains(m.Subject, "Proposal to merge") {
			continue
		}
		if len(m.To) != 1 || !strings.Contains(m.Text, g.URL+"/.ssogate/settings/identity") || m.Subject != "Proposal to merge inc into surv" {
			t.Fatalf("merge mail: to %v, subject %q:\n%s", m.To, m.Subject, m.Text)
		}
		to = append(to, m.To...)
	}
	slices.Sort(to)
	if want := []string{"admin@inc-corp.com", "admin@surv.com", "owner@inc-corp.com", "owner@surv.com"}; !slices.Equal(to, want) {
		t.Fatalf("merge mails went to %v, want %v", to, want)
	}

	// Both sides list it; a third parent org cannot see or touch it.
	for _, api := range []apiClient{surv, inc} {
		if _, list := api.do("GET", "/merge-proposals", "", ""); len(list["proposals"].([]any)) != 1 {
			t.Fatalf("list: %v", list)
		}
	}
	if _, list := inc.do("GET", "/merge-proposals/"+id, "", ""); list["side"] != "incoming" || !strings.Contains(jsonOf(list["orgs"]), `"name":"inc-two","slug":"inc-two"`) {
		t.Fatalf("incoming side's view: %v", list)
	}
	if _, list := other.do("GET", "/merge-proposals", "", ""); len(list["proposals"].([]any)) != 0 {
		t.Fatalf("third party list: %v", list)
	}
	for _, path := range []string{"/merge-proposals/" + id + "/approve", "/merge-proposals/" + id + "/decline"} {
		if code, body := other.do("POST", path, "", ""); code != 404 {
			t.Fatalf("third party %s: %d %v", path, code, body)
		}
	}
	if code, body := inc.do("POST", "/merge-proposals/"+id+"/withdraw", "", ""); code != 403 {
		t.Fatalf("withdraw by the incoming side: %d %v", code, body)
	}

	// The surviving side approves: still proposed. Twice: 409.
	code, body = surv.do("POST", "/merge-proposals/"+id+"/approve", "", "")
	if code != 200 || body["status"] != "proposed" || body["surviving_approved_by"] != "api:test" || body["incoming_approved_by"] != nil {
		t.Fatalf("surviving approval: %d %v", code, body)
	}
	if code, body := surv.do("POST", "/merge-proposals/"+id+"/approve", "", ""); code != 409 || errCode(body) != "already_approved" {
		t.Fatalf("second surviving approval: %d %v", code, body)
	}
	if got := orgSlugs(t, surv); !slices.Equal(got, []string{"surv"}) {
		t.Fatalf("orgs moved before both approved: %v", got)
	}

	// The incoming side approves: applied at once.
	code, body = inc.do("POST", "/merge-proposals/"+id+"/approve", "", "")
	if code != 200 || body["status"] != "applied" || body["decided_at"] == nil {
		t.Fatalf("incoming approval: %d %v", code, body)
	}
	if got := orgSlugs(t, surv); !slices.Equal(got, []string{"surv", "inc", "inc-two"}) {
		t.Fatalf("surviving orgs after the merge: %v", got)
	}
	if got := orgSlugs(t, inc); len(got) != 0 {
		t.Fatalf("incoming parent org still has orgs: %v", got)
	}
	if got := domainStates(t, surv); got["inc-corp.com"] != "verified" {
		t.Fatalf("the incoming verified domain did not move: %v", got)
	}
	if got := domainStates(t, inc); len(got) != 0 {
		t.Fatalf("the incoming parent org still claims domains: %v", got)
	}
	// The surviving side now manages the moved orgs.
	if code, body := surv.do("GET", "/orgs/inc-two/members", "", ""); code != 200 || !strings.Contains(jsonOf(body), "member@inc-corp.com") {
		t.Fatalf("members of a moved org: %d %v", code, body)
	}
	// Members of moved orgs still pass, with the same orgs upstream.
	resp := get(t, g.URL, "/", incMember.Cookie, nil)
	if b := gatewaytest.ReadBody(t, resp); resp.StatusCode != 200 || !strings.Contains(b, "inc-two:member") {
		t.Fatalf("member of a moved org: %d %s", resp.StatusCode, b)
	}
	// Applied is final.
	for _, action := range []string{"approve", "decline", "withdraw"} {
		if code, body := surv.do("POST", "/merge-proposals/"+id+"/"+action, "", ""); code != 409 || errCode(body) != "not_proposed" {
			t.Fatalf("%s after apply: %d %v", action, code, body)
		}
	}
	out := g.SettledOutput()
	for _, action := range []string{"merge.propose", "merge.approve", "merge.apply"} {
		if auditLines(out, `"action":"`+action+`"`, `"target":"`+id+`"`, `"outcome":"success"`) == 0 {
			t.Errorf("no %s audit line", action)
		}
	}
	if n := auditLines(out, `"action":"merge.approve"`, `"target":"`+id+`"`); n != 2 {
		t.Errorf("%d merge.approve audit lines, want 2", n)
	}
}

// A merge the store refuses (the surviving parent org holds a claim on the
// incoming one's verified domain) answers 409 and changes nothing; once the
// conflict is gone, approving again applies it.
func TestMergeConflict(t *testing.T) {
	t.Parallel()
	g, dns, _ := parentsGateway(t)
	alpha := apiClient{t, g.URL, signIn(t, g, "owner@alpha.com", "alpha", "owner", true).APIKey}
	beta := apiClient{t, g.URL, signIn(t, g, "owner@beta.com", "beta", "owner", true).APIKey}
	if code, body := alpha.do("POST", "/domains", "application/json", `{"domain":"shared-corp.com"}`); code != 201 {
		t.Fatalf("alpha's pending claim: %d %v", code, body)
	}
	verifiedDomain(t, beta, dns, "shared-corp.com")
	verifiedDomain(t, beta, dns, "beta.com")

	id := propose(t, alpha, "beta")
	if code, body := alpha.do("POST", "/merge-proposals/"+id+"/approve", "", ""); code != 200 {
		t.Fatalf("alpha approves: %d %v", code, body)
	}
	code, body := beta.do("POST", "/merge-proposals/"+id+"/approve", "", "")
	if code != 409 || errCode(body) != "merge_conflict" || !strings.Contains(jsonOf(body), "shared-corp.com") {
		t.Fatalf("conflicting merge: %d %v", code, body)
	}
	check := func() {
		t.Helper()
		if got := orgSlugs(t, alpha); !slices.Equal(got, []string{"alpha"}) {
			t.Fatalf("alpha's orgs changed: %v", got)
		}
		if got := orgSlugs(t, beta); !slices.Equal(got, []string{"beta"}) {
			t.Fatalf("beta's orgs changed: %v", got)
		}
		if got := domainStates(t, alpha); len(got) != 1 || got["shared-corp.com"] != "pending" {
			t.Fatalf("alpha's domains changed: %v", got)
		}
		if got := domainStates(t, beta); len(got) != 2 || got["shared-corp.com"] != "verified" || got["beta.com"] != "verified" {
			t.Fatalf("beta's domains changed: %v", got)
		}
		_, p := alpha.do("GET", "/merge-proposals/"+id, "", "")
		if p["status"] != "proposed" || p["surviving_approved_by"] == nil || p["incoming_approved_by"] == nil {
			t.Fatalf("proposal after the conflict: %v", p)
		}
	}
	check()
	// Approving again retries the merge (still refused).
	if code, body := alpha.do("POST", "/merge-proposals/"+id+"/approve", "", ""); code != 409 || errCode(body) != "merge_conflict" {
		t.Fatalf("retry with the conflict: %d %v", code, body)
	}
	check()
	if auditLines(g.SettledOutput(), `"action":"merge.apply"`, `"outcome":"failure"`, `"reason":"merge_conflict"`) != 2 {
		t.Fatal("refused merges were not audited")
	}

	// Alpha drops its claim: the retry applies.
	if code, _ := alpha.do("DELETE", "/domains/shared-corp.com", "", ""); code != 204 {
		t.Fatalf("drop claim: %d", code)
	}
	if code, body := beta.do("POST", "/merge-proposals/"+id+"/approve", "", ""); code != 200 || body["status"] != "applied" {
		t.Fatalf("retry without the conflict: %d %v", code, body)
	}
	if got := domainStates(t, alpha); got["shared-corp.com"] != "verified" || got["beta.com"] != "verified" {
		t.Fatalf("alpha's domains after the merge: %v", got)
	}
	if got := orgSlugs(t, alpha); !slices.Equal(got, []string{"alpha", "beta"}) {
		t.Fatalf("alpha's orgs after the merge: %v", got)
	}

	// An org added to the incoming parent org after the proposal would be
	// left behind: refused, nothing moves.
	gamma := apiClient{t, g.URL, signIn(t, g, "owner@gamma.com", "gamma", "owner", true).APIKey}
	delta := apiClient{t, g.URL, signIn(t, g, "owner@delta.com", "delta", "owner", true).APIKey}
	id = propose(t, gamma, "delta")
	if code, body := delta.do("POST", "/orgs", "application/json", `{"slug":"delta-late","name":"Delta Late"}`); code != 201 {
		t.Fatalf("late org: %d %v", code, body)
	}
	gamma.do("POST", "/merge-proposals/"+id+"/approve", "", "")
	code, body = delta.do("POST", "/merge-proposals/"+id+"/approve", "", "")
	if code != 409 || errCode(body) != "merge_conflict" || !strings.Contains(jsonOf(body), "Delta Late joined") {
		t.Fatalf("merge leaving an org behind: %d %v", code, body)
	}
	if got := orgSlugs(t, delta); !slices.Equal(got, []string{"delta", "delta-late"}) {
		t.Fatalf("delta's orgs changed: %v", got)
	}
	if got := orgSlugs(t, gamma); !slices.Equal(got, []string{"gamma"}) {
		t.Fatalf("gamma's orgs changed: %v", got)
	}
}

// Both sides approve at the same moment: the merge applies exactly once.
func TestMergeConcurrentApprovals(t *testing.T) {
	t.Parallel()
	g, _, _ := parentsGateway(t)
	concurrentApprovals(t, []*gatewaytest.Gateway{g, g}, "c")
}

// The same on two gateway instances sharing Redis, each side approving on
// its own instance.
func TestMergeConcurrentApprovalsRedis(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := upstream(t)
	a := gatewaytest.Start(t, redisGlobal(rs.URL())+siteBlock(up.URL), gatewaytest.Options{})
	b := gatewaytest.Start(t, redisGlobal(rs.URL())+siteBlock(up.URL), gatewaytest.Options{})
	concurrentApprovals(t, []*gatewaytest.Gateway{a, b}, "r")
}

func concurrentApprovals(t *testing.T, gs []*gatewaytest.Gateway, prefix string) {
	for round := range 5 {
		s, i := fmt.Sprintf("%s%d-surv", prefix, round), fmt.Sprintf("%s%d-inc", prefix, round)
		surv := apiClient{t, gs[0].URL, signIn(t, gs[0], "owner@"+s+".com", s, "owner", true).APIKey}
		inc := apiClient{t, gs[1].URL, signIn(t, gs[1], "owner@"+i+".com", i, "owner", true).APIKey}
		signInUnder(t, gs[1], "m@"+i+".com", i+"-two", "member", i, false)
		id := propose(t, surv, i)

		start := make(chan struct{})
		var wg sync.WaitGroup
		codes := make([]int, 2)
		statuses := make([]any, 2)
		for n, api := range []apiClient{surv, inc} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest("POST", api.base+"/.ssogate/api/v1/merge-proposals/"+id+"/approve", nil)
				req.Header.Set("Authorization", "Bearer "+api.key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				var body map[string]any
				_ = json.Unmarshal([]byte(gatewaytest.ReadBody(t, resp)), &body)
				codes[n], statuses[n] = resp.StatusCode, body["status"]
			}()
		}
		close(start)
		wg.Wait()
		if codes[0] != 200 || codes[1] != 200 {
			t.Fatalf("round %d: concurrent approvals answered %v (%v)", round, codes, statuses)
		}
		if statuses[0] != "applied" && statuses[1] != "applied" {
			t.Fatalf("round %d: neither approval answered applied: %v", round, statuses)
		}
		if _, p := surv.do("GET", "/merge-proposals/"+id, "", ""); p["status"] != "applied" {
			t.Fatalf("round %d: proposal %v", round, p)
		}
		if got := orgSlugs(t, surv); !slices.Equal(got, []string{s, i, i + "-two"}) {
			t.Fatalf("round %d: surviving orgs %v", round, got)
		}
		applies := 0
		for _, g := range slices.Compact(slices.Clone(gs)) {
			applies += auditLines(g.SettledOutput(), `"action":"merge.apply"`, `"target":"`+id+`"`)
		}
		if applies != 1 {
			t.Fatalf("round %d: %d merge.apply audit lines, want exactly 1", round, applies)
		}
	}
}

// Decline (either side) and withdraw (the proposer's side) end a proposal.
func TestMergeDeclineWithdraw(t *testing.T) {
	t.Parallel()
	g, _, _ := parentsGateway(t)
	eps := apiClient{t, g.URL, signIn(t, g, "owner@eps.com", "eps", "owner", true).APIKey}
	zeta := apiClient{t, g.URL, signIn(t, g, "owner@zeta.com", "zeta", "owner", true).APIKey}

	id := propose(t, eps, "zeta")
	if code, body := zeta.do("POST", "/merge-proposals/"+id+"/decline", "", ""); code != 200 || body["status"] != "declined" {
		t.Fatalf("decline: %d %v", code, body)
	}
	for _, api := range []apiClient{eps, zeta} {
		if code, body := api.do("POST", "/merge-proposals/"+id+"/approve", "", ""); code != 409 || errCode(body) != "not_proposed" {
			t.Fatalf("approve a declined proposal: %d %v", code, body)
		}
	}
	if code, body := eps.do("POST", "/merge-proposals/"+id+"/withdraw", "", ""); code != 409 {
		t.Fatalf("withdraw a declined proposal: %d %v", code, body)
	}

	// A new proposal (the ended one does not block it), withdrawn after one approval.
	id2 := propose(t, eps, "zeta")
	if code, _ := zeta.do("POST", "/merge-proposals/"+id2+"/approve", "", ""); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	if code, body := eps.do("POST", "/merge-proposals/"+id2+"/withdraw", "", ""); code != 200 || body["status"] != "withdrawn" {
		t.Fatalf("withdraw: %d %v", code, body)
	}
	if code, body := eps.do("POST", "/merge-proposals/"+id2+"/approve", "", ""); code != 409 || errCode(body) != "not_proposed" {
		t.Fatalf("approve a withdrawn proposal: %d %v", code, body)
	}
	if code, body := zeta.do("POST", "/merge-proposals/"+id2+"/decline", "", ""); code != 409 {
		t.Fatalf("decline a withdrawn proposal: %d %v", code, body)
	}
	if got := orgSlugs(t, eps); !slices.Equal(got, []string{"eps"}) {
		t.Fatalf("orgs moved: %v", got)
	}
	_, list := eps.do("GET", "/merge-proposals", "", "")
	if s := jsonOf(list); !strings.Contains(s, `"status":"declined"`) || !strings.Contains(s, `"status":"withdrawn"`) {
		t.Fatalf("list: %s", s)
	}
	out := g.SettledOutput()
	if auditLines(out, `"action":"merge.decline"`, `"target":"`+id+`"`) != 1 || auditLines(out, `"action":"merge.withdraw"`, `"target":"`+id2+`"`) != 1 {
		t.Fatal("decline or withdraw not audited")
	}
}

// View Domain Memberships: every account on the caller's verified domain,
// with every org it belongs to across three parent orgs.
func TestDomainMembershipsView(t *testing.T) {
	t.Parallel()
	g, dns, _ := parentsGateway(t)
	acme := apiClient{t, g.URL, signIn(t, g, "owner@acme.com", "acme", "owner", true).APIKey}
	verifiedDomain(t, acme, dns, "acme.com")
	signIn(t, g, "a@acme.com", "acme", "member", false)
	globex := apiClient{t, g.URL, signIn(t, g, "b@acme.com", "globex", "admin", true).APIKey} // parent 2
	signIn(t, g, "c@acme.com", "initech", "member", false)                                    // parent 3
	signIn(t, g, "c@acme.com", "acme", "admin", false)
	signIn(t, g, "d@acme.com", "", "", false)            // an account in no org
	signIn(t, g, "x@other.com", "acme", "member", false) // not on the domain
	// An org of parent 2 whose name differs from its slug, joined by invitation.
	if code, body := globex.do("POST", "/orgs", "application/json", `{"slug":"globex-labs","name":"Globex Labs"}`); code != 201 {
		t.Fatalf("create org: %d %v", code, body)
	}
	if code, body := globex.do("POST", "/orgs/globex-labs/members", "application/json", `{"email":"c@acme.com","role":"member"}`); code != 201 {
		t.Fatalf("invite: %d %v", code, body)
	}

	code, body := acme.do("GET", "/domain-memberships", "", "")
	if code != 200 {
		t.Fatalf("view: %d %v", code, body)
	}
	if s := jsonOf(body); strings.Contains(s, "globex-labs") || strings.Contains(s, "x@other.com") {
		t.Fatalf("the view leaks a foreign slug or an account off the domain: %s", s)
	}
	domains := body["domains"].([]any)
	if len(domains) != 1 || domains[0].(map[string]any)["domain"] != "acme.com" {
		t.Fatalf("domains: %s", jsonOf(body))
	}
	accounts := map[string]map[string]any{}
	var emails []string
	for _, a := range domains[0].(map[string]any)["accounts"].([]any) {
		m := a.(map[string]any)
		accounts[m["email"].(string)] = m
		emails = append(emails, m["email"].(string))
	}
	if want := []string{"a@acme.com", "b@acme.com", "c@acme.com", "d@acme.com", "owner@acme.com"}; !slices.Equal(emails, want) {
		t.Fatalf("accounts %v, want %v", emails, want)
	}
	memberships := func(email string) string { return jsonOf(accounts[email]["memberships"]) }
	for email, want := range map[string]string{
		"a@acme.com": `[{"in_parent":true,"org":"acme","org_id":"` + accounts["a@acme.com"]["memberships"].([]any)[0].(map[string]any)["org_id"].(string) +
			`","org_name":"acme","role":"member","source":"test","status":"active"}]`,
		"b@acme.com": `[{"in_parent":false,"org":null,"org_name":"globex","role":"admin","source":"test","status":"active"}]`,
		"d@acme.com": `[]`,
	} {
		if got := memberships(email); got != want {
			t.Errorf("%s memberships:\n got %s\nwant %s", email, got, want)
		}
	}
	c := accounts["c@acme.com"]["memberships"].([]any)
	if len(c) != 3 {
		t.Fatalf("c@acme.com memberships: %s", memberships("c@acme.com"))
	}
	c0, c1, c2 := c[0].(map[string]any), c[1].(map[string]any), c[2].(map[string]any)
	if c0["org"] != "acme" || c0["in_parent"] != true || c0["role"] != "admin" ||
		c1["org"] != nil || c1["org_name"] != "Globex Labs" || c1["in_parent"] != false || c1["status"] != "invited" || c1["source"] != "invite" ||
		c2["org"] != nil || c2["org_name"] != "initech" || c2["in_parent"] != false || c2["role"] != "member" {
		t.Fatalf("c@acme.com memberships: %s", memberships("c@acme.com"))
	}
	if a := accounts["b@acme.com"]; a["created_by"] != "test" || a["user_id"] == "" || a["last_login_at"] != nil {
		t.Fatalf("account fields: %v", a)
	}

	// CSV.
	req, _ := http.NewRequest("GET", g.URL+"/.ssogate/api/v1/domain-memberships", nil)
	req.Header.Set("Authorization", "Bearer "+acme.key)
	req.Header.Set("Accept", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw := gatewaytest.ReadBody(t, resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	rows, err := csv.NewReader(strings.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v\n%s", err, raw)
	}
	want := [][]string{
		{"domain", "email", "name", "created_by", "last_login_at", "org_name", "in_parent_org", "role", "status", "source"},
		{"acme.com", "a@acme.com", "", "test", "", "acme", "true", "member", "active", "test"},
		{"acme.com", "b@acme.com", "", "test", "", "globex", "false", "admin", "active", "test"},
		{"acme.com", "c@acme.com", "", "test", "", "acme", "true", "admin", "active", "test"},
		{"acme.com", "c@acme.com", "", "test", "", "Globex Labs", "false", "member", "invited", "invite"},
		{"acme.com", "c@acme.com", "", "test", "", "initech", "false", "member", "active", "test"},
		{"acme.com", "d@acme.com", "", "test", "", "", "", "", "", ""},
		{"acme.com", "owner@acme.com", "", "test", "", "acme", "true", "owner", "active", "test"},
	}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Fatalf("CSV rows:\n got %q\nwant %q", rows, want)
	}

	// Parent 2 verified nothing: it sees no domain, so none of acme.com's accounts.
	if code, body := globex.do("GET", "/domain-memberships", "", ""); code != 200 || jsonOf(body) != `{"domains":[]}` {
		t.Fatalf("parent 2's view: %d %v", code, body)
	}
	// Asking for acme.com by name: its verifier sees it, another parent org's owner gets 403.
	if code, body := acme.do("GET", "/domain-memberships?domain=ACME.com", "", ""); code != 200 || !strings.Contains(jsonOf(body), `"domain":"acme.com"`) {
		t.Fatalf("acme asking for acme.com: %d %v", code, body)
	}
	if code, body := globex.do("GET", "/domain-memberships?domain=acme.com", "", ""); code != 403 || errCode(body) != "forbidden" {
		t.Fatalf("parent 2 asking for acme.com: %d %v", code, body)
	}
	// Not for unauthenticated callers.
	if code, _ := (apiClient{t, g.URL, "sgk_wrong"}).do("GET", "/domain-memberships", "", ""); code != 401 {
		t.Fatalf("unknown key: %d", code)
	}
}

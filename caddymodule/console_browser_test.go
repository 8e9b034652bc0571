package caddymodule_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/ssogate/ssogate/internal/dnstest"
	"github.com/ssogate/ssogate/internal/gatewaytest"
	"github.com/ssogate/ssogate/internal/samltest"
)

// chromium starts headless Debian Chromium for one test. It fails (never
// skips) when Chromium is missing: `make test` installs it.
func chromium(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("chromium is not installed: run `make test` (as root it installs it), or `apt-get install chromium`")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium (%s): %v", path, err)
	}
	return ctx
}

// screenshot saves the page as a PNG in testdata-artifacts/console (or
// $SSOGATE_ARTIFACTS), for people to look at.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("SSOGATE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "testdata-artifacts")
	}
	dir = filepath.Join(dir, "console")
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs browser steps, failing the test with the page's text.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
		t.Fatalf("%s: %v\npage: %.3000s", what, err, page)
	}
}

// value runs one browser action that answers a value.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// TestConsoleInBrowser walks the seed's steps in a real browser: Add
// Domain → TXT instructions → Pending → Refresh → Verified; Add SSO with
// the IdP's metadata → Test sign-in through a real SAML IdP → checkmark;
// Require SSO (confirmation, sessions end); Add Member and "…" → Remove
// from team; a SCIM token shown once; the group mapping preview.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	ctx := chromium(t)
	dns := dnstest.Start(t)
	idp := samltest.Start(t, samltest.Options{})
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global("ssogate {\n\t\tdns_resolver "+dns.Addr+"\n\t\tdomain_check_interval 1h\n\t\tallow_private_idps\n\t}")+siteBlock(up.URL), gatewaytest.Options{})
	owner := signIn(t, g, "owner@acme.test", "acme", "owner", false)
	console := g.URL + "/.ssogate/settings/identity"

	httpOnly := true
	if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: "ssogate_session", Value: owner.Cookie, URL: g.URL, HTTPOnly: &httpOnly}); err != nil {
		t.Fatalf("sign-in cookie: %v", err)
	}
	run(t, ctx, "open console", chromedp.Navigate(console), chromedp.WaitVisible(`//h2[contains(., "Domains")]`))
	screenshot(t, ctx, "01-empty")

	// Add Domain, then the TXT instructions and the Pending badge.
	run(t, ctx, "add domain",
		chromedp.Click(`//summary[normalize-space(.)="Add Domain"]`),
		chromedp.SendKeys(`#domain-name`, "acme.test"),
		chromedp.Submit(`#domain-name`),
		chromedp.WaitVisible(`tr[data-domain="acme.test"] .badge.pending`))
	txtName := value(t, ctx, "TXT name", chromedp.Text(chromedp.CSS(`tr[data-domain="acme.test"] dl dd:nth-of-type(2) code`)))
	txtValue := value(t, ctx, "TXT value", chromedp.Text(chromedp.CSS(`tr[data-domain="acme.test"] dl dd:nth-of-type(3) code`)))
	if txtName != "_ssogate-challenge.acme.test" || !strings.HasPrefix(txtValue, "ssogate-domain-verification=") {
		t.Fatalf("TXT instructions: %q = %q", txtName, txtValue)
	}
	screenshot(t, ctx, "02-domain-pending")
	dns.SetTXT(txtName, txtValue)
	run(t, ctx, "refresh", chromedp.Click(`//tr[@data-domain="acme.test"]//button[normalize-space(.)="Refresh"]`),
		chromedp.WaitVisible(`tr[data-domain="acme.test"] .badge.verified`))
	screenshot(t, ctx, "03-domain-verified")

	// Add SSO: the values to paste come first; then the IdP's metadata.
	run(t, ctx, "add SSO form",
		chromedp.Click(`//summary[normalize-space(.)="Add SSO"]`),
		chromedp.Click(`//summary[contains(., "SAML 2.0")]`))
	acs := value(t, ctx, "ACS URL", chromedp.Text(`//details[contains(summary, "SAML 2.0")]//dd[1]/code`))
	if !strings.HasPrefix(acs, g.URL+"/.ssogate/saml/") || !strings.HasSuffix(acs, "/acs") {
		t.Fatalf("ACS URL before saving: %q", acs)
	}
	screenshot(t, ctx, "04-add-sso")
	run(t, ctx, "save SAML connection",
		chromedp.SendKeys(`#saml-name`, "Acme IdP"),
		chromedp.SendKeys(`#saml-url`, idp.MetadataURL()),
		chromedp.Submit(`#saml-name`),
		chromedp.WaitVisible(`//div[@data-connection]//h3[.="Acme IdP"]`))
	acsSaved := value(t, ctx, "saved ACS URL", chromedp.Text(`//div[@data-connection]//dt[.="ACS URL"]/following-sibling::dd[1]/code`))
	if acsSaved != acs {
		t.Fatalf("the connection's ACS URL %q is not the one shown before saving (%q)", acsSaved, acs)
	}
	// The IdP admin pastes the SP metadata into the IdP.
	resp, err := http.Get(strings.TrimSuffix(acs, "/acs") + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	idp.RegisterSP(t, md)
	idp.AddUser(t, "owner", "pw-owner", "owner@acme.test", []string{"ssogate-acme-owner"})

	// Test sign-in: through the IdP's own login form and back.
	run(t, ctx, "test sign-in",
		chromedp.Click(`//button[normalize-space(.)="Test sign-in"]`),
		chromedp.WaitVisible(`input[name="user"]`),
		chromedp.SendKeys(`input[name="user"]`, "owner"),
		chromedp.SendKeys(`input[name="password"]`, "pw-owner"),
		chromedp.Submit(`input[name="user"]`),
		chromedp.WaitVisible(`//div[contains(@class,"flash")][contains(., "Test sign-in succeeded")]`),
		chromedp.WaitVisible(`//h2[@id="h-sso"]/span[@aria-label="set up and tested"]`))
	screenshot(t, ctx, "05-sso-tested")

	// Require SSO: the confirmation is required, then every session ends
	// (this browser's too: it is sent to sign in again).
	run(t, ctx, "require SSO without confirming",
		chromedp.Click(`//button[normalize-space(.)="Require SSO"]`))
	required := value(t, ctx, "confirm box is required", chromedp.Evaluate[bool](`document.querySelector('input[name=confirm]').required && location.pathname.endsWith('/settings/identity')`))
	if !required {
		t.Fatal("Require SSO went through without the confirmation")
	}
	run(t, ctx, "require SSO",
		chromedp.Click(`input[name="confirm"]`),
		chromedp.Click(`//button[normalize-space(.)="Require SSO"]`),
		chromedp.WaitVisible(`//input[@name="email"]`))
	loc := value(t, ctx, "signed out", chromedp.Location())
	if !strings.Contains(loc, "/.ssogate/login") {
		t.Fatalf("after requiring SSO the console session should have ended; at %s", loc)
	}
	// Sign in again through SSO (the IdP session is still open).
	run(t, ctx, "sign in through SSO",
		chromedp.SendKeys(`//input[@name="email"]`, "owner@acme.test"),
		chromedp.Submit(`//input[@name="email"]`),
		chromedp.WaitVisible(`//span[contains(@class,"badge")][.="Required for your domains"]`))
	screenshot(t, ctx, "06-sso-required")

	// Members: Add Member, then "…" → Remove from team.
	run(t, ctx, "members page", chromedp.Click(`//nav//a[.="Members"]`), chromedp.WaitVisible(`//h2[contains(., "Members of acme")]`))
	// With SSO required, people on the domain join through the IdP: the
	// refusal shows next to the field.
	run(t, ctx, "add member on the SSO domain",
		chromedp.Click(`//summary[normalize-space(.)="Add Member"]`),
		chromedp.SendKeys(`#member-email`, "carol@acme.test"),
		chromedp.Submit(`#member-email`),
		chromedp.WaitVisible(`#member-err`))
	if msg := value(t, ctx, "refusal", chromedp.Text(chromedp.CSS(`#member-err`))); !strings.Contains(msg, "single sign-on") {
		t.Fatalf("refusal next to the email field: %q", msg)
	}
	run(t, ctx, "add member",
		chromedp.Clear(`#member-email`),
		chromedp.SendKeys(`#member-email`, "bob@contractor.example"),
		chromedp.Submit(`#member-email`),
		chromedp.WaitVisible(`tr[data-member="bob@contractor.example"]`))
	screenshot(t, ctx, "07-members")
	run(t, ctx, "remove from team",
		chromedp.Click(`tr[data-member="bob@contractor.example"] details.menu summary`),
		chromedp.WaitVisible(`//tr[@data-member="bob@contractor.example"]//button[.="Remove from team"]`))
	screenshot(t, ctx, "08-remove-menu")
	run(t, ctx, "confirm removal",
		chromedp.Click(`//tr[@data-member="bob@contractor.example"]//button[.="Remove from team"]`),
		chromedp.WaitVisible(`//div[contains(@class,"flash")][contains(., "Removed from team")]`))
	stillThere := value(t, ctx, "bob gone", chromedp.Evaluate[bool](`!!document.querySelector('tr[data-member="bob@contractor.example"]')`))
	if stillThere {
		t.Fatal("bob is still listed after Remove from team")
	}

	// SCIM: a token shown once.
	run(t, ctx, "scim token",
		chromedp.Click(`//nav//a[.="SCIM provisioning"]`),
		chromedp.Click(`//summary[normalize-space(.)="Create token"]`),
		chromedp.SendKeys(`#token-name`, "Okta"),
		chromedp.Submit(`#token-name`),
		chromedp.WaitVisible(`.secret code`))
	token := value(t, ctx, "token", chromedp.Text(chromedp.CSS(`.secret code`)))
	if !strings.HasPrefix(token, "ssogate_scim_") {
		t.Fatalf("token: %q", token)
	}
	screenshot(t, ctx, "09-scim-token")
	run(t, ctx, "token not shown again", chromedp.Navigate(console+"/scim"),
		chromedp.WaitVisible(`tr[data-token="Okta"]`))
	shownAgain := value(t, ctx, "token shown?", chromedp.Evaluate[bool](`document.body.innerHTML.includes(`+jsString(token)+`)`))
	if shownAgain {
		t.Fatal("the SCIM token is shown again")
	}

	// Group mappings: the groups to create and the preview.
	run(t, ctx, "group mappings", chromedp.Click(`//nav//a[.="Group mappings"]`),
		chromedp.WaitVisible(`//li/code[.="ssogate-acme-owner"]`))
	screenshot(t, ctx, "10-group-mappings")
	run(t, ctx, "domain memberships", chromedp.Click(`//nav//a[.="Domain memberships"]`),
		chromedp.WaitVisible(`//td/strong[.="owner@acme.test"]`))
	screenshot(t, ctx, "11-domain-memberships")
	run(t, ctx, "audit log", chromedp.Click(`//nav//a[.="Audit log"]`),
		chromedp.WaitVisible(`//td/code[.="sso.enforce"]`))
	screenshot(t, ctx, "12-audit")
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

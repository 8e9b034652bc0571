package mail_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ssogate/ssogate/mail"
)

func TestRender(t *testing.T) {
	const link = "https://sso.example.com/.ssogate/magic/tok123"
	const evil = "<script>alert(1)</script>"
	cases := []struct {
		name    string
		data    any
		subject string
	}{
		{mail.TemplateSigninLink, mail.SigninLinkData{Link: link, SiteName: "Acme " + evil, ExpiresIn: 15 * time.Minute}, "Your sign-in link for Acme " + evil},
		{mail.TemplateInvite, mail.InviteData{Link: link, OrgName: "Ops " + evil, InviterEmail: "boss@example.com", SiteName: "Acme"}, "boss@example.com invited you to join Ops " + evil + " on Acme"},
		{mail.TemplateMergeProposal, mail.MergeProposalData{SurvivingName: "Acme", IncomingName: "Acme EU " + evil, Link: link, ProposedBy: "owner@example.com"}, "Proposal to merge Acme EU " + evil + " into Acme"},
		{mail.TemplateInvite, map[string]any{"Link": link, "OrgName": evil, "InviterEmail": "a@b.c", "SiteName": "S"}, "a@b.c invited you to join " + evil + " on S"},
	}
	for _, tc := range cases {
		m, err := mail.Render(tc.name, tc.data)
		if err != nil {
			t.Fatalf("Render(%s): %v", tc.name, err)
		}
		if m.Subject != tc.subject {
			t.Errorf("%s: Subject = %q, want %q", tc.name, m.Subject, tc.subject)
		}
		if strings.Contains(m.HTML, "<script>") || !strings.Contains(m.HTML, "&lt;script&gt;") {
			t.Errorf("%s: HTML does not escape the data:\n%s", tc.name, m.HTML)
		}
		if !strings.Contains(m.HTML, `href="`+link+`"`) {
			t.Errorf("%s: HTML has no link:\n%s", tc.name, m.HTML)
		}
		if !strings.Contains(m.Text, link) {
			t.Errorf("%s: text has no link:\n%s", tc.name, m.Text)
		}
		if len(m.To) != 0 || strings.Contains(m.Text, "{{") || strings.Contains(m.HTML, "{{") {
			t.Errorf("%s: unexpected output %+v", tc.name, m)
		}
	}
}

func TestRenderDetails(t *testing.T) {
	m, err := mail.Render(mail.TemplateSigninLink, mail.SigninLinkData{Link: "https://x.test/m/1", SiteName: "Acme", ExpiresIn: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Text, "expires in 15 minutes") || !strings.Contains(m.HTML, "expires in 15 minutes") {
		t.Errorf("expiry not humanised:\n%s", m.Text)
	}
	m, err = mail.Render(mail.TemplateSigninLink, mail.SigninLinkData{Link: "javascript:alert(1)", SiteName: "Acme", ExpiresIn: "1 hour"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.HTML, `href="javascript:`) {
		t.Error("HTML links a javascript: URL")
	}
	if _, err := mail.Render("nope", nil); err == nil || !strings.Contains(err.Error(), "signin_link") {
		t.Errorf("unknown template error = %v", err)
	}
	if _, err := mail.Render(mail.TemplateInvite, map[string]any{"Link": "https://x.test"}); err == nil {
		t.Error("Render with missing keys succeeded")
	}
	if got := mail.TemplateNames(); strings.Join(got, ",") != "invite,merge_proposal,signin_link" {
		t.Errorf("TemplateNames() = %v", got)
	}
}

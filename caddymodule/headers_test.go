package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestStripIdentityHeaders(t *testing.T) {
	tests := []struct {
		sent     string
		stripped bool
	}{
		{"X-Forwarded-Email", true},
		{"x-forwarded-email", true},
		{"X-FORWARDED-EMAIL", true},
		{"x_forwarded_email", true},
		{"X_Forwarded_Email", true},
		{"X-Forwarded_Email", true},
		{"X-Forwarded-User", true},
		{"x_forwarded_user", true},
		{"X-Forwarded-Groups", true},
		{"X-FORWARDED_GROUPS", true},
		{"X-Ssogate-Orgs", true},
		{"x_ssogate_orgs", true},
		{"X-Ssogate-Jwt-Assertion", true},
		{"x-ssogate-jwt-assertion", true},
		{"X_SSOGATE_JWT_ASSERTION", true},
		// Not ours: left alone.
		{"X-Forwarded-For", false},
		{"X-Forwarded-Proto", false},
		{"X-Forwarded-Emails", false},
		{"X-Forwarded-Emai", false},
		{"Forwarded-Email", false},
		{"X-Ssogate-Org", false},
		{"Cookie", false},
		{"Authorization", false},
	}
	for _, tt := range tests {
		h := http.Header{tt.sent: {"spoof"}, "Accept": {"*/*"}}
		stripIdentityHeaders(h)
		_, kept := h[tt.sent]
		if kept == tt.stripped {
			t.Errorf("%q: stripped=%v, want %v", tt.sent, !kept, tt.stripped)
		}
		if h.Get("Accept") != "*/*" {
			t.Errorf("%q: Accept was removed", tt.sent)
		}
	}
}

func TestCookieValueParsing(t *testing.T) {
	const name = "__Host-ssogate_session"
	tests := []struct {
		header []string
		want   string
	}{
		{[]string{name + "=abc.def"}, "abc.def"},
		{[]string{"a=b; " + name + "=abc.def; c=d"}, "abc.def"},
		{[]string{"a=b", name + "=v2"}, "v2"},
		{[]string{name + `="quoted"`}, "quoted"},
		{[]string{"x" + name + "=nope"}, ""},
		{[]string{name + "x=nope"}, ""},
		{[]string{name}, ""},
		{[]string{"ssogate_session=http-cookie"}, ""}, // the HTTP name is not the HTTPS one
		{nil, ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Cookie"] = tt.header
		if got := cookieValue(r, name); got != tt.want {
			t.Errorf("cookieValue(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	for _, tt := range []struct {
		site, name string
		secure     bool
	}{
		{"https://app.example.com", "__Host-ssogate_session", true},
		{"http://127.0.0.1:8080", "ssogate_session", false},
	} {
		h := &Handler{SiteURL: tt.site, BasePath: DefaultBasePath}
		h.provision(&App{})
		w := httptest.NewRecorder()
		h.setSessionCookie(w, "v", time.Now().Add(time.Hour))
		c := w.Header().Get("Set-Cookie")
		for _, want := range []string{tt.name + "=v", "Path=/", "HttpOnly", "SameSite=Lax"} {
			if !strings.Contains(c, want) {
				t.Errorf("%s: cookie %q lacks %q", tt.site, c, want)
			}
		}
		if strings.Contains(c, "Domain=") {
			t.Errorf("%s: cookie %q has a Domain: it must be host-only", tt.site, c)
		}
		if strings.Contains(c, "Secure") != tt.secure {
			t.Errorf("%s: cookie %q Secure=%v", tt.site, c, !tt.secure)
		}
	}
}

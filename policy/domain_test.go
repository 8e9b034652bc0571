package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeDomain(t *testing.T) {
	blocked := map[string]bool{"partner-mail.example": true}
	tests := []struct {
		raw, want, code string
	}{
		{"example.com", "example.com", ""},
		{"Example.COM", "example.com", ""},
		{"example.com.", "example.com", ""},
		{"  acme.com  ", "acme.com", ""},
		{"eng.acme.com", "eng.acme.com", ""},
		{"acme.co.uk", "acme.co.uk", ""},
		{"münchen.de", "xn--mnchen-3ya.de", ""},
		{"MÜNCHEN.DE", "xn--mnchen-3ya.de", ""},
		{"xn--mnchen-3ya.de", "xn--mnchen-3ya.de", ""},
		{"例え.jp", "xn--r8jz45g.jp", ""},
		{"acme.com。", "acme.com", ""}, // ideographic full stop maps to "."
		{"my-app.github.io", "my-app.github.io", ""},
		{"", "", "domain_empty"},
		{"   ", "", "domain_empty"},
		{"com", "", "domain_single_label"},
		{"localhost", "", "domain_single_label"},
		{"co.uk", "", "domain_public_suffix"},
		{"github.io", "", "domain_public_suffix"},
		{"com.", "", "domain_single_label"},
		{"*.acme.com", "", "domain_wildcard"},
		{"acme.*", "", "domain_wildcard"},
		{"192.168.1.1", "", "domain_ip"},
		{"::1", "", "domain_ip"},
		{"[2001:db8::1]", "", "domain_ip"},
		{"10.0.0.300", "", "domain_ip"},
		{"gmail.com", "", "domain_consumer"},
		{"GMAIL.COM.", "", "domain_consumer"},
		{"outlook.com", "", "domain_consumer"},
		{"partner-mail.example", "", "domain_consumer"},
		{"https://acme.com", "", "domain_invalid"},
		{"acme.com/path", "", "domain_invalid"},
		{"alice@acme.com", "", "domain_invalid"},
		{"acme.com:443", "", "domain_invalid"},
		{"ac me.com", "", "domain_invalid"},
		{"-acme.com", "", "domain_invalid"},
		{"acme-.com", "", "domain_invalid"},
		{"acme..com", "", "domain_invalid"},
		{"xn--zz.com", "", "domain_invalid"}, // bad punycode
		{"acme\u200b.com", "", "domain_invalid"},
		{strings.Repeat("a", 64) + ".com", "", "domain_invalid"},
		{strings.Repeat("a.", 150) + "com", "", "domain_too_long"},
		{strings.Repeat("x", 300), "", "domain_too_long"},
	}
	for _, tt := range tests {
		got, err := NormalizeDomain(tt.raw, blocked)
		var de *DomainError
		switch {
		case tt.code == "" && err != nil:
			t.Errorf("NormalizeDomain(%q): unexpected error %v", tt.raw, err)
		case tt.code != "" && (!errors.As(err, &de) || de.Code != tt.code):
			t.Errorf("NormalizeDomain(%q) = %q, %v; want code %s", tt.raw, got, err, tt.code)
		case got != tt.want:
			t.Errorf("NormalizeDomain(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		raw, email, domain string
		ok                 bool
	}{
		{"Alice@Acme.COM", "alice@acme.com", "acme.com", true},
		{"bob.smith+tag@eng.acme.com", "bob.smith+tag@eng.acme.com", "eng.acme.com", true},
		{"jürgen@münchen.de", "", "", false}, // non-ASCII local part
		{"j@münchen.de", "j@xn--mnchen-3ya.de", "xn--mnchen-3ya.de", true},
		{"user@evil.com@acme.com", "", "", false},
		{"user@evil.com<!---->.acme.com", "", "", false},
		{"user", "", "", false},
		{"@acme.com", "", "", false},
		{"user@", "", "", false},
		{"us er@acme.com", "", "", false},
		{"user\x00@acme.com", "", "", false},
		{"user@[127.0.0.1]", "", "", false},
		{"user@127.0.0.1", "", "", false},
		{"user@localhost", "", "", false},
		{".user@acme.com", "", "", false},
		{"us..er@acme.com", "", "", false},
		{"\"quoted\"@acme.com", "", "", false},
		{"user@acme.com\u202e", "", "", false},
		{strings.Repeat("a", 65) + "@acme.com", "", "", false},
	}
	for _, tt := range tests {
		email, domain, err := NormalizeEmail(tt.raw)
		if (err == nil) != tt.ok || email != tt.email || domain != tt.domain {
			t.Errorf("NormalizeEmail(%q) = %q, %q, %v; want %q, %q, ok=%v", tt.raw, email, domain, err, tt.email, tt.domain, tt.ok)
		}
	}
}

func FuzzNormalizeDomain(f *testing.F) {
	for _, s := range []string{"example.com", "münchen.de", "*.a.com", "1.2.3.4", "co.uk", "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		d, err := NormalizeDomain(raw, nil)
		if err != nil {
			return
		}
		// A normalised domain is stable and plain ASCII.
		if again, err := NormalizeDomain(d, nil); err != nil || again != d {
			t.Fatalf("NormalizeDomain(%q) = %q, but again = %q, %v", raw, d, again, err)
		}
		for i := 0; i < len(d); i++ {
			if c := d[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("NormalizeDomain(%q) = %q: byte %q", raw, d, c)
			}
		}
	})
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"a@b.com", "a@b@c.com", "A@MÜNCHEN.DE", "x@[1.2.3.4]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		e, d, err := NormalizeEmail(raw)
		if err != nil {
			return
		}
		if strings.Count(e, "@") != 1 || !strings.HasSuffix(e, "@"+d) {
			t.Fatalf("NormalizeEmail(%q) = %q, %q", raw, e, d)
		}
		if again, _, err := NormalizeEmail(e); err != nil || again != e {
			t.Fatalf("NormalizeEmail not stable: %q -> %q -> %q, %v", raw, e, again, err)
		}
	})
}

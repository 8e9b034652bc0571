package policy

import "testing"

func TestSafeReturnTo(t *testing.T) {
	const origin = "https://app.example.com"
	tests := []struct {
		raw, want string
	}{
		// Accepted.
		{"/", "/"},
		{"/dashboard", "/dashboard"},
		{"/a/b?x=1&y=%2F", "/a/b?x=1&y=%2F"},
		{"/search?q=hello#frag", "/search?q=hello#frag"},
		{"https://app.example.com/settings?tab=1", "/settings?tab=1"},
		{"https://APP.example.com/x", "/x"},
		{"https://app.example.com", "/"},
		// Refused: other hosts and protocol-relative.
		{"https://evil.com/", "/"},
		{"http://app.example.com/x", "/"}, // scheme downgrade
		{"https://app.example.com.evil.com/x", "/"},
		{"https://app.example.com@evil.com/", "/"},
		{"https://evil.com#https://app.example.com/", "/"},
		{"https://app.example.com:8443/x", "/"}, // odd port
		{"//evil.com", "/"},
		{"///evil.com", "/"},
		{"/\\evil.com", "/"},
		{"\\\\evil.com", "/"},
		{"/\t/evil.com", "/"},
		{"/\r\\evil.com", "/"},
		{"/\n/evil.com", "/"},
		{"/./\\evil.com", "/"},
		{"/../evil", "/"},
		{"/%2F%2Fevil.com", "/"},
		{"/%2f/evil.com", "/"},
		{"/%5Cevil.com", "/"},
		{"/%09/evil.com", "/"},
		{"%2F%2Fevil.com", "/"},
		{"javascript:alert(1)", "/"},
		{"JaVaScRiPt:alert(1)", "/"},
		{"data:text/html,<script>alert(1)</script>", "/"},
		{"/\u3002evil.com", "/"}, // ideographic full stop
		{"https:evil.com", "/"},
		{"https:/evil.com", "/"},
		{"evil.com", "/"},
		{" /x", "/"},
		{"/x y", "/"},
		{"", "/"},
		{"/" + string(make([]byte, MaxReturnToLen)), "/"},
		{"https://user:pass@app.example.com/x", "/"},
		{"/%ZZ", "/"},
	}
	for _, tt := range tests {
		if got := SafeReturnTo(tt.raw, origin); got != tt.want {
			t.Errorf("SafeReturnTo(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func FuzzSafeReturnTo(f *testing.F) {
	for _, s := range []string{"/", "//evil", "/\\evil", "https://app.example.com/x", "/%2F%2Fx", "/\t/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := SafeReturnTo(raw, "https://app.example.com")
		if got == "/" {
			return
		}
		if got[0] != '/' || (len(got) > 1 && (got[1] == '/' || got[1] == '\\')) || hasUnsafeBytes(got) {
			t.Fatalf("SafeReturnTo(%q) = %q: not a plain local path", raw, got)
		}
	})
}

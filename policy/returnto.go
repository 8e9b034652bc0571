package policy

import (
	"net/url"
	"strings"
)

// MaxReturnToLen bounds return_to values; longer ones are refused.
const MaxReturnToLen = 2048

// SafeReturnTo returns a same-origin path to send the browser to after
// sign-in, or "/" when raw is not provably same-origin. origin is the
// site's configured origin ("https://app.example.com"); absolute URLs are
// accepted only when they match it exactly, and come back as a path.
//
// Browsers are lenient ("/\evil", "/\t/evil", "//evil" all leave the site),
// so anything unusual is refused rather than repaired.
func SafeReturnTo(raw, origin string) string {
	if raw == "" || len(raw) > MaxReturnToLen {
		return "/"
	}
	if strings.HasPrefix(raw, "/") {
		if safePath(raw) {
			return raw
		}
		return "/"
	}
	// Absolute URL: only our own origin, and only its path part.
	if origin == "" || hasUnsafeBytes(raw) {
		return "/"
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" {
		return "/"
	}
	o, err := url.Parse(origin)
	if err != nil || !strings.EqualFold(u.Scheme, o.Scheme) || !strings.EqualFold(u.Host, o.Host) {
		return "/"
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	if safePath(p) {
		return p
	}
	return "/"
}

// safePath accepts "/x…" paths that no browser can read as another host.
func safePath(p string) bool {
	if len(p) == 0 || p[0] != '/' || hasUnsafeBytes(p) {
		return false
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return false
	}
	// Decoded once more, the path must still be a plain local path: this
	// catches %2F%2Fevil, %5Cevil and encoded control bytes.
	dec, err := url.PathUnescape(p)
	if err != nil || hasUnsafeBytes(dec) || strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, "/\\") {
		return false
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return false
	}
	// "/./\x" and "/../x" tricks: a clean, local path has no dot segments
	// that walk toward "//".
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// hasUnsafeBytes reports control characters, backslashes, spaces and
// non-ASCII, which browsers strip or reinterpret in URLs.
func hasUnsafeBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c == 0x7f || c == '\\' || c >= 0x80 {
			return true
		}
	}
	return false
}

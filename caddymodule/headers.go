package caddymodule

import "net/http"

// Identity headers ssogate sets upstream. Client-sent copies of these are
// removed from every request, in every case and with '_' for '-', since
// some upstream servers (CGI, PHP, WSGI) fold '_' and '-' together.
const (
	hdrEmail  = "X-Forwarded-Email"
	hdrUser   = "X-Forwarded-User"
	hdrGroups = "X-Forwarded-Groups"
	hdrOrgs   = "X-Ssogate-Orgs"
	hdrJWT    = "X-Ssogate-Jwt-Assertion"
)

var identityHeaders = [...]string{hdrEmail, hdrUser, hdrGroups, hdrOrgs, hdrJWT}

// stripIdentityHeaders deletes every header that an upstream could read as
// one of ours. It allocates nothing when there is nothing to delete.
func stripIdentityHeaders(h http.Header) {
	for k := range h {
		if isIdentityHeader(k) {
			delete(h, k)
		}
	}
}

func isIdentityHeader(k string) bool {
	for _, name := range identityHeaders {
		if foldEqual(k, name) {
			return true
		}
	}
	return false
}

// foldEqual compares header names ASCII-case-insensitively, with '_' equal to '-'.
func foldEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

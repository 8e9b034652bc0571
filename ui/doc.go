// Package ui renders ssogate's server-side HTML pages (sign-in, notices,
// and later the admin console) from templates embedded in the binary.
package ui

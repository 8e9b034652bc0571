// Package dnstest runs a real DNS server (miekg/dns, see internal/txtdns)
// on loopback for tests, answering TXT records the test publishes.
package dnstest

import (
	"testing"

	"github.com/ssogate/ssogate/internal/txtdns"
)

// Server answers TXT queries from an in-memory zone over UDP and TCP: its
// Addr field is host:port; SetTXT publishes records and Fail(true) makes
// it answer SERVFAIL.
type Server = txtdns.Server

// Start runs a server on a free loopback port until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := txtdns.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

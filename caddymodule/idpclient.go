package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// errPrivateIdP refuses IdP addresses inside the gateway's own network.
var errPrivateIdP = errors.New("the IdP address is private, loopback or link-local; set allow_private_idps to use one")

// newIdPClient is the HTTP client for IdP metadata, discovery and token
// calls. Tenant owners choose those URLs, so unless private IdPs are
// allowed it refuses to connect to loopback, private, link-local and
// other internal addresses (checked on the resolved address, so DNS
// tricks and redirects are covered too).
func newIdPClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: func(network, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if !publicAddress(host) {
			return fmt.Errorf("%s: %w", address, errPrivateIdP)
		}
		return nil
	}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}
	tr.Proxy = nil // a proxy would hide the real destination from the check
	return &http.Client{Timeout: 10 * time.Second, Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "https" && !allowPrivate {
				return errors.New("redirect away from https refused")
			}
			return nil
		}}
}

// nonPublic are special-purpose ranges (IANA) that the net.IP predicates
// do not cover: carrier-grade NAT (also used by overlay networks), IPv4
// "this network", IETF protocol assignments, benchmarking, reserved,
// NAT64 and 6to4 (which embed IPv4 addresses), and Teredo.
var nonPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4",
		"64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32", "100::/64"} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

// publicAddress tells whether an IdP may be dialled at host (an IP).
func publicAddress(host string) bool {
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	if addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() ||
		addr.IsUnspecified() || addr.IsMulticast() || addr.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
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
		ip := net.ParseIP(host)
		if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
			ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
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

package domains

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// TXTPrefix starts every verification record's value.
const TXTPrefix = "ssogate-domain-verification="

// DefaultLabel is the name the TXT record goes on, under the domain.
const DefaultLabel = "_ssogate-challenge"

// ErrRecordMissing means the TXT record was not found (yet).
var ErrRecordMissing = errors.New("no matching TXT record")

// Resolver looks up TXT records. Server is host:port of a DNS server
// (empty: the system resolver).
type Resolver struct {
	Server  string
	Timeout time.Duration
}

// LookupTXT returns the TXT strings at name, each record's split strings
// joined (RFC 7208 §3.3), as published.
func (r Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if r.Server == "" {
		txts, err := net.DefaultResolver.LookupTXT(ctx, name)
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, nil
		}
		return txts, err
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	m.RecursionDesired = true
	c := &dns.Client{Net: "udp", Timeout: timeout}
	in, _, err := c.ExchangeContext(ctx, m, r.Server)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, m, r.Server)
	}
	if err != nil {
		return nil, fmt.Errorf("asking %s for TXT %s: %w", r.Server, name, err)
	}
	switch in.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return nil, fmt.Errorf("asking %s for TXT %s: %s", r.Server, name, dns.RcodeToString[in.Rcode])
	}
	var out []string
	for _, rr := range in.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out, nil
}

// RecordName is where the TXT record for domain goes.
func RecordName(label, domain string) string {
	if label == "" {
		label = DefaultLabel
	}
	return label + "." + domain
}

// RecordValue is the TXT value that proves the claim with token.
func RecordValue(token string) string { return TXTPrefix + token }

// check looks for the claim's TXT value among the records at its name.
func check(ctx context.Context, r Resolver, label, domain, token string) error {
	name := RecordName(label, domain)
	txts, err := r.LookupTXT(ctx, name)
	if err != nil {
		return err
	}
	want := RecordValue(token)
	for _, t := range txts {
		if strings.TrimSpace(t) == want {
			return nil
		}
	}
	if len(txts) == 0 {
		return fmt.Errorf("%w at %s", ErrRecordMissing, name)
	}
	return fmt.Errorf("%w at %s: found %d TXT record(s), none with this claim's value", ErrRecordMissing, name, len(txts))
}

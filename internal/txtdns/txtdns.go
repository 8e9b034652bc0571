// Package txtdns is a small but real DNS server (miekg/dns) that answers
// TXT queries from an in-memory table, over UDP and TCP on one loopback
// port. Tests use it through internal/dnstest; `ssogate demo` runs it so
// that domain capture is checked by a real DNS lookup.
package txtdns

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Server answers TXT queries from its table. Its methods are safe for
// concurrent use.
type Server struct {
	Addr string // host:port, UDP and TCP

	mu      sync.Mutex
	records map[string][][]string // fqdn (lower-case) -> records, each split into strings
	fail    bool
	servers []*dns.Server
}

// Record is one TXT record in the table.
type Record struct {
	Name  string // fully qualified, lower case, with the trailing dot
	Value string // the strings of the record, joined
}

// Start serves on addr (host:port, UDP and TCP). With port 0 a port that
// is free for both protocols is chosen.
func Start(addr string) (*Server, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("txtdns: address %q: %w", addr, err)
	}
	attempts := 1
	if port == "0" {
		// The UDP port must also be free for TCP; retry with another when not.
		attempts = 20
	}
	var pc net.PacketConn
	var l net.Listener
	for i := 0; i < attempts; i++ {
		pc, err = net.ListenPacket("udp", net.JoinHostPort(host, port))
		if err != nil {
			return nil, fmt.Errorf("txtdns: listening on udp %s: %w", addr, err)
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("txtdns: listening on tcp %s: %w", addr, err)
	}
	return Serve(pc, l), nil
}

// Serve answers on pc (UDP) and l (TCP), which should share an address.
func Serve(pc net.PacketConn, l net.Listener) *Server {
	s := &Server{Addr: pc.LocalAddr().String(), records: map[string][][]string{}}
	h := dns.HandlerFunc(s.serve)
	s.servers = []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}}
	for _, srv := range s.servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
	}
	return s
}

// Close stops the server.
func (s *Server) Close() error {
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.Shutdown())
	}
	return errors.Join(errs...)
}

// SetTXT replaces the TXT records at name. Each value is one record; a
// value with "|" in it is published as several strings of one record.
// With no values the name exists but has no TXT records (see Delete).
func (s *Server) SetTXT(name string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := dns.Fqdn(strings.ToLower(name))
	var recs [][]string
	for _, v := range values {
		recs = append(recs, strings.Split(v, "|"))
	}
	s.records[key] = recs
}

// Delete removes name: queries for it get NXDOMAIN again.
func (s *Server) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, dns.Fqdn(strings.ToLower(name)))
}

// Records lists the table, sorted by name.
func (s *Server) Records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for name, recs := range s.records {
		for _, r := range recs {
			out = append(out, Record{Name: name, Value: strings.Join(r, "")})
		}
	}
	slices.SortFunc(out, func(a, b Record) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	return out
}

// Fail makes the server answer SERVFAIL (true) or normally (false).
func (s *Server) Fail(on bool) {
	s.mu.Lock()
	s.fail = on
	s.mu.Unlock()
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		m.Rcode = dns.RcodeServerFailure
		_ = w.WriteMsg(m)
		return
	}
	for _, q := range req.Question {
		recs, ok := s.records[strings.ToLower(q.Name)]
		if !ok {
			m.Rcode = dns.RcodeNameError
			continue
		}
		if q.Qtype != dns.TypeTXT {
			continue
		}
		for _, txt := range recs {
			m.Answer = append(m.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
				Txt: txt,
			})
		}
	}
	_ = w.WriteMsg(m)
}

// Package dnstest runs a real DNS server (miekg/dns) on loopback for
// tests, answering TXT records the test publishes.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server answers TXT queries from an in-memory zone over UDP and TCP.
type Server struct {
	Addr string // host:port, UDP and TCP

	mu      sync.Mutex
	records map[string][][]string // fqdn (lower-case) -> records, each split into strings
	fail    bool
	servers []*dns.Server
}

// Start runs a server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{records: map[string][][]string{}}
	// The UDP port must also be free for TCP; retry with another when not.
	var pc net.PacketConn
	var l net.Listener
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("dnstest: listening: %v", err)
		}
		s.Addr = pc.LocalAddr().String()
		if l, err = net.Listen("tcp", s.Addr); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatalf("dnstest: no port free for both UDP and TCP: %v", err)
	}
	h := dns.HandlerFunc(s.serve)
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: l, Handler: h}
	s.servers = []*dns.Server{udp, tcp}
	for _, srv := range s.servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
	}
	t.Cleanup(func() {
		for _, srv := range s.servers {
			_ = srv.Shutdown()
		}
	})
	return s
}

// SetTXT replaces the TXT records at name. Each value is one record; a
// value with "|" in it is published as several strings of one record.
func (s *Server) SetTXT(name string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var recs [][]string
	for _, v := range values {
		recs = append(recs, strings.Split(v, "|"))
	}
	s.records[dns.Fqdn(strings.ToLower(name))] = recs
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

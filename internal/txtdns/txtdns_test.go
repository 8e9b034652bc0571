package txtdns

import (
	"testing"

	"github.com/miekg/dns"
)

func TestServer(t *testing.T) {
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Start(s.Addr); err == nil {
		t.Fatal("a second server on the same port started")
	}
	s.SetTXT("_x.Example.test", "a|b", "c")
	if got := s.Records(); len(got) != 2 || got[0] != (Record{"_x.example.test.", "ab"}) || got[1].Value != "c" {
		t.Fatalf("Records = %v", got)
	}
	for _, net := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion("_x.example.test.", dns.TypeTXT)
		r, _, err := (&dns.Client{Net: net}).Exchange(m, s.Addr)
		if err != nil || len(r.Answer) != 2 {
			t.Fatalf("%s: %v %v", net, r, err)
		}
	}
	s.Delete("_x.example.test")
	m := new(dns.Msg)
	m.SetQuestion("_x.example.test.", dns.TypeTXT)
	if r, _, err := new(dns.Client).Exchange(m, s.Addr); err != nil || r.Rcode != dns.RcodeNameError {
		t.Fatalf("after Delete: %v %v", r, err)
	}
}

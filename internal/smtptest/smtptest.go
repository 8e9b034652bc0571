// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp) on
// 127.0.0.1 for tests. It records every message it accepts, parses each into
// subject, plain-text and HTML bodies, and can require AUTH PLAIN, offer
// STARTTLS or implicit TLS with a self-signed certificate, and fail the next n
// transactions with a temporary (451) error to exercise retries.
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Received is one message the server accepted.
type Received struct {
	From string   // envelope sender (MAIL FROM)
	To   []string // envelope recipients (RCPT TO)
	Data []byte   // the message as sent after DATA

	// Parsed from Data. Parsing is best effort: ParseError says what failed.
	Subject    string
	Text       string // decoded text/plain body, if any
	HTML       string // decoded text/html body, if any
	Header     map[string][]string
	ParseError error

	TLS      bool   // the transaction ran over TLS (STARTTLS or implicit)
	AuthUser string // user name the client authenticated as, if any
}

// Server is a running test SMTP server.
type Server struct {
	Addr string // "127.0.0.1:port"
	Host string // "127.0.0.1"
	Port int

	srv  *smtp.Server
	pool *x509.CertPool

	mu           sync.Mutex
	changed      chan struct{} // closed and replaced whenever msgs changes
	msgs         []Received
	failNext     int
	transactions int
	user, pass   string
	closed       bool
}

// Start runs a plain (no TLS) server on 127.0.0.1:0. It stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, nil, false)
}

// StartTLS runs a server that offers STARTTLS with a self-signed certificate
// for 127.0.0.1 and localhost; CertPool returns a pool that trusts it.
func StartTLS(t testing.TB) *Server {
	t.Helper()
	return start(t, selfSigned(t), false)
}

// StartImplicitTLS runs a server that speaks TLS from the first byte (smtps).
func StartImplicitTLS(t testing.TB) *Server {
	t.Helper()
	return start(t, selfSigned(t), true)
}

func start(t testing.TB, cert *tls.Certificate, implicit bool) *Server {
	t.Helper()
	s := &Server{changed: make(chan struct{})}
	s.srv = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.MaxMessageBytes = 10 << 20
	s.srv.MaxRecipients = 100
	s.srv.ErrorLog = log.New(&testWriter{t: t, s: s}, "smtptest: ", 0)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	if cert != nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			t.Fatalf("smtptest: parse certificate: %v", err)
		}
		s.pool = x509.NewCertPool()
		s.pool.AddCert(leaf)
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
		if implicit {
			ln = tls.NewListener(ln, s.srv.TLSConfig)
		}
	}
	tcp := ln.Addr().(*net.TCPAddr)
	s.Addr, s.Host, s.Port = tcp.String(), tcp.IP.String(), tcp.Port

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		_ = s.srv.Close()
		<-done
	})
	return s
}

// CertPool returns a pool trusting the server's certificate (nil without TLS).
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// RequireAuth makes the server offer AUTH PLAIN (only over TLS) and refuse
// MAIL FROM from clients that have not authenticated as user/pass.
func (s *Server) RequireAuth(user, pass string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.pass = user, pass
}

// FailNext makes the next n transactions fail at the end of DATA with
// "451 4.3.0 temporary failure" (the message is not recorded).
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// Transactions is how many DATA commands the server has answered, failed or not.
func (s *Server) Transactions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transactions
}

// Messages returns a copy of the messages accepted so far, oldest first.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// WaitFor waits until at least n messages have been accepted and returns them;
// it fails the test if that does not happen within timeout.
func (s *Server) WaitFor(t testing.TB, n int, timeout time.Duration) []Received {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		msgs, changed := append([]Received(nil), s.msgs...), s.changed
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("smtptest: got %d messages after %v, want %d", len(msgs), timeout, n)
			return nil
		}
	}
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{s: s, tls: isTLS}, nil
}

var errTemporary = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "temporary failure (smtptest)"}

type session struct {
	s        *Server
	tls      bool
	authUser string
	from     string
	to       []string
}

func (ss *session) AuthMechanisms() []string {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		ss.s.mu.Lock()
		ok := ss.s.user != "" && username == ss.s.user && password == ss.s.pass
		ss.s.mu.Unlock()
		if !ok || (identity != "" && identity != username) {
			return smtp.ErrAuthFailed
		}
		ss.authUser = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.s.mu.Lock()
	needAuth := ss.s.user != ""
	ss.s.mu.Unlock()
	if needAuth && ss.authUser == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("smtptest: read DATA: %w", err)
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	ss.s.transactions++
	if ss.s.failNext > 0 {
		ss.s.failNext--
		return errTemporary
	}
	rcv := Received{From: ss.from, To: append([]string(nil), ss.to...), Data: data, TLS: ss.tls, AuthUser: ss.authUser}
	rcv.parse()
	ss.s.msgs = append(ss.s.msgs, rcv)
	close(ss.s.changed)
	ss.s.changed = make(chan struct{})
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// selfSigned makes an ECDSA certificate for 127.0.0.1, ::1 and localhost.
func selfSigned(t testing.TB) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("smtptest: generate key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatalf("smtptest: serial: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "smtptest " + strconv.FormatInt(serial.Int64(), 16)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("smtptest: create certificate: %v", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// testWriter sends go-smtp's error log to t.Log until the server is closed
// (t.Log after the test has ended panics).
type testWriter struct {
	t testing.TB
	s *Server
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.closed {
		return 0, errors.New("smtptest: closed")
	}
	w.t.Log(string(p))
	return len(p), nil
}

package mail_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/smtptest"
	"github.com/ssogate/ssogate/mail"
)

const from = "Acme SSO <sso@example.com>"

func testMessage(to ...string) *mail.Message {
	return &mail.Message{
		To:      to,
		Subject: "Sign in to Acme",
		Text:    "Open https://sso.example.com/.ssogate/magic/tok to sign in.",
		HTML:    `<p><a href="https://sso.example.com/.ssogate/magic/tok">Sign in</a></p>`,
	}
}

func mustParse(t *testing.T, raw string) *mail.SMTPConfig {
	t.Helper()
	cfg, err := mail.ParseURL(raw)
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", raw, err)
	}
	return cfg
}

func newSender(t *testing.T, cfg *mail.SMTPConfig) *mail.SMTPSender {
	t.Helper()
	s, err := mail.NewSMTP(cfg, from)
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	return s
}

func TestSMTPPlainSend(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, mustParse(t, "smtp://"+srv.Addr+"?starttls=none"))
	if err := s.Send(context.Background(), testMessage("Ann <ann@example.org>", "bob@example.net")); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitFor(t, 1, 5*time.Second)[0]
	if got.ParseError != nil {
		t.Fatal(got.ParseError)
	}
	if got.From != "sso@example.com" || strings.Join(got.To, ",") != "ann@example.org,bob@example.net" {
		t.Errorf("envelope %q -> %q", got.From, got.To)
	}
	if got.Subject != "Sign in to Acme" {
		t.Errorf("Subject = %q", got.Subject)
	}
	if !strings.Contains(got.Text, "https://sso.example.com/.ssogate/magic/tok") || !strings.Contains(got.HTML, `<a href="https://sso.example.com/.ssogate/magic/tok">`) {
		t.Errorf("bodies: text %q html %q", got.Text, got.HTML)
	}
	h := func(k string) string { return strings.Join(got.Header[k], " ") }
	if !strings.Contains(h("From"), `"Acme SSO" <sso@example.com>`) {
		t.Errorf("From header = %q", h("From"))
	}
	if !strings.HasPrefix(h("Content-Type"), "multipart/alternative;") {
		t.Errorf("Content-Type = %q", h("Content-Type"))
	}
	if !strings.HasSuffix(h("Message-Id"), "@example.com>") {
		t.Errorf("Message-ID = %q", h("Message-Id"))
	}
	if _, err := time.Parse(time.RFC1123Z, h("Date")); err != nil {
		t.Errorf("Date %q: %v", h("Date"), err)
	}
	if got.TLS || got.AuthUser != "" {
		t.Errorf("TLS=%v AuthUser=%q", got.TLS, got.AuthUser)
	}
}

func TestSMTPStartTLSWithAuth(t *testing.T) {
	srv := smtptest.StartTLS(t)
	srv.RequireAuth("mailer", "p@ss word")
	cfg := mustParse(t, fmt.Sprintf("smtp://mailer:p%%40ss%%20word@127.0.0.1:%d", srv.Port))
	if cfg.StartTLS != mail.StartTLSRequired || cfg.Password != "p@ss word" {
		t.Fatalf("cfg = %+v", cfg)
	}
	cfg.TLSConfig = &tls.Config{RootCAs: srv.CertPool()}
	if err := newSender(t, cfg).Send(context.Background(), testMessage("ann@example.org")); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitFor(t, 1, 5*time.Second)[0]
	if !got.TLS || got.AuthUser != "mailer" {
		t.Errorf("TLS=%v AuthUser=%q, want TLS and mailer", got.TLS, got.AuthUser)
	}

	bad := *cfg
	bad.Password = "wrong-secret"
	err := newSender(t, &bad).Send(context.Background(), testMessage("ann@example.org"))
	if err == nil {
		t.Fatal("send with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	srv := smtptest.StartImplicitTLS(t)
	cfg := mustParse(t, fmt.Sprintf("smtps://localhost:%d", srv.Port))
	cfg.TLSConfig = &tls.Config{RootCAs: srv.CertPool()}
	if err := newSender(t, cfg).Send(context.Background(), testMessage("ann@example.org")); err != nil {
		t.Fatal(err)
	}
	if got := srv.WaitFor(t, 1, 5*time.Second)[0]; !got.TLS {
		t.Error("message did not arrive over TLS")
	}
}

func TestSMTPStartTLSRequiredRefusesPlainServer(t *testing.T) {
	srv := smtptest.Start(t)
	srv.RequireAuth("mailer", "secret")
	cfg := mustParse(t, fmt.Sprintf("smtp://mailer:secret@127.0.0.1:%d", srv.Port))
	err := newSender(t, cfg).Send(context.Background(), testMessage("ann@example.org"))
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("err = %v, want a STARTTLS error", err)
	}
	if srv.Transactions() != 0 {
		t.Error("a message was sent without TLS")
	}
}

func TestSMTPCertificateChecked(t *testing.T) {
	srv := smtptest.StartTLS(t)
	err := newSender(t, mustParse(t, "smtp://"+srv.Addr)).Send(context.Background(), testMessage("ann@example.org"))
	if err == nil {
		t.Fatal("untrusted certificate accepted")
	}
	cfg := mustParse(t, "smtp://"+srv.Addr+"?insecure_skip_verify=true")
	if err := newSender(t, cfg).Send(context.Background(), testMessage("ann@example.org")); err != nil {
		t.Fatalf("insecure_skip_verify on loopback: %v", err)
	}
	srv.WaitFor(t, 1, 5*time.Second)
}

func TestSMTPTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and never answer
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	cfg := mustParse(t, "smtp://"+ln.Addr().String()+"?starttls=none")
	cfg.Timeout = 300 * time.Millisecond
	start := time.Now()
	err = newSender(t, cfg).Send(context.Background(), testMessage("ann@example.org"))
	if err == nil {
		t.Fatal("send to a silent server succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("send took %v with a 300ms timeout", d)
	}
}

func TestNewSMTPValidatesFrom(t *testing.T) {
	cfg := mustParse(t, "smtp://127.0.0.1:25?starttls=none")
	for _, f := range []string{"", "not an address", "Acme <sso>", "a@b, c@d"} {
		if _, err := mail.NewSMTP(cfg, f); err == nil {
			t.Errorf("NewSMTP(from %q) succeeded", f)
		}
	}
	s, err := mail.NewSMTP(cfg, from)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*mail.Message{nil, {Subject: "x", Text: "y"}, {To: []string{"bad"}, Subject: "x", Text: "y"}, {To: []string{"a@b.c"}, Text: "y"}, {To: []string{"a@b.c"}, Subject: "x"}} {
		if err := s.Send(context.Background(), m); !errors.Is(err, mail.ErrInvalidMessage) {
			t.Errorf("Send(%+v) = %v, want ErrInvalidMessage", m, err)
		}
	}
}

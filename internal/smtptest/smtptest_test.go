package smtptest

import (
	"crypto/tls"
	"net/smtp"
	"strings"
	"testing"
	"time"
)

const multipartMsg = "From: a@example.com\r\n" +
	"To: b@example.com\r\n" +
	"Subject: =?UTF-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=XYZ\r\n" +
	"\r\n" +
	"--XYZ\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"caf=C3=A9 link=3Dhttps://x.test/a\r\n" +
	"--XYZ\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"PHA+aGVsbG88L3A+\r\n" +
	"--XYZ--\r\n"

func TestPlainReceiveAndParse(t *testing.T) {
	s := Start(t)
	if err := smtp.SendMail(s.Addr, nil, "a@example.com", []string{"b@example.com", "c@example.com"}, []byte(multipartMsg)); err != nil {
		t.Fatal(err)
	}
	got := s.WaitFor(t, 1, 5*time.Second)[0]
	if got.ParseError != nil {
		t.Fatal(got.ParseError)
	}
	if got.From != "a@example.com" || strings.Join(got.To, ",") != "b@example.com,c@example.com" {
		t.Errorf("envelope = %q -> %q", got.From, got.To)
	}
	if got.Subject != "Grüße" || got.Text != "café link=https://x.test/a" || got.HTML != "<p>hello</p>" {
		t.Errorf("parsed subject %q text %q html %q", got.Subject, got.Text, got.HTML)
	}
	if got.TLS || got.AuthUser != "" {
		t.Errorf("TLS=%v AuthUser=%q on a plain server", got.TLS, got.AuthUser)
	}
}

func TestFailNext(t *testing.T) {
	s := Start(t)
	s.FailNext(1)
	msg := []byte("Subject: x\r\n\r\nbody\r\n")
	err := smtp.SendMail(s.Addr, nil, "a@example.com", []string{"b@example.com"}, msg)
	if err == nil || !strings.HasPrefix(err.Error(), "451") {
		t.Fatalf("first send: err = %v, want 451", err)
	}
	if err := smtp.SendMail(s.Addr, nil, "a@example.com", []string{"b@example.com"}, msg); err != nil {
		t.Fatal(err)
	}
	if got := s.WaitFor(t, 1, 5*time.Second); len(got) != 1 || got[0].Text != "body\n" {
		t.Fatalf("messages = %+v", got)
	}
	if s.Transactions() != 2 {
		t.Errorf("Transactions() = %d, want 2", s.Transactions())
	}
}

func TestStartTLSWithAuth(t *testing.T) {
	s := StartTLS(t)
	s.RequireAuth("user", "secret")
	send := func(auth smtp.Auth) error {
		c, err := smtp.Dial(s.Addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.StartTLS(&tls.Config{RootCAs: s.CertPool(), ServerName: "127.0.0.1"}); err != nil {
			return err
		}
		if auth != nil {
			if err := c.Auth(auth); err != nil {
				return err
			}
		}
		if err := c.Mail("a@example.com"); err != nil {
			return err
		}
		if err := c.Rcpt("b@example.com"); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := w.Write([]byte("Subject: hi\r\n\r\nx\r\n")); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		return c.Quit()
	}
	if err := send(nil); err == nil {
		t.Fatal("send without auth succeeded")
	}
	if err := send(smtp.PlainAuth("", "user", "wrong", "127.0.0.1")); err == nil {
		t.Fatal("send with a wrong password succeeded")
	}
	if err := send(smtp.PlainAuth("", "user", "secret", "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	got := s.WaitFor(t, 1, 5*time.Second)[0]
	if !got.TLS || got.AuthUser != "user" || got.Subject != "hi" {
		t.Errorf("got TLS=%v AuthUser=%q Subject=%q", got.TLS, got.AuthUser, got.Subject)
	}
}

func TestImplicitTLS(t *testing.T) {
	s := StartImplicitTLS(t)
	conn, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: s.CertPool(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("a@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.com"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("Subject: tls\r\n\r\nx\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.WaitFor(t, 1, 5*time.Second)[0]; !got.TLS || got.Subject != "tls" {
		t.Errorf("got TLS=%v Subject=%q", got.TLS, got.Subject)
	}
}

package mail_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/mail"
)

func TestParseURL(t *testing.T) {
	good := []struct {
		raw  string
		want mail.SMTPConfig
	}{
		{"smtp://user:pass@smtp.example.com:587", mail.SMTPConfig{Host: "smtp.example.com", Port: 587, Username: "user", Password: "pass", StartTLS: mail.StartTLSRequired}},
		{"smtp://user:pass@smtp.example.com", mail.SMTPConfig{Host: "smtp.example.com", Port: 587, Username: "user", Password: "pass", StartTLS: mail.StartTLSRequired}},
		{"smtp://u%40x.com:p%2Fw%3A@smtp.example.com:2525?starttls=opportunistic", mail.SMTPConfig{Host: "smtp.example.com", Port: 2525, Username: "u@x.com", Password: "p/w:", StartTLS: mail.StartTLSOpportunistic}},
		{"smtp://user:pass@smtp.example.com:587?starttls=REQUIRED", mail.SMTPConfig{Host: "smtp.example.com", Port: 587, Username: "user", Password: "pass", StartTLS: mail.StartTLSRequired}},
		{"smtps://user:pass@smtp.example.com:465", mail.SMTPConfig{Host: "smtp.example.com", Port: 465, Username: "user", Password: "pass", ImplicitTLS: true}},
		{"smtps://smtp.example.com", mail.SMTPConfig{Host: "smtp.example.com", Port: 465, ImplicitTLS: true}},
		{"smtp://relay.internal:25?starttls=none", mail.SMTPConfig{Host: "relay.internal", Port: 25, StartTLS: mail.StartTLSNone}},
		{"smtp://relay.internal?starttls=none", mail.SMTPConfig{Host: "relay.internal", Port: 25, StartTLS: mail.StartTLSNone}},
		{"smtp://127.0.0.1:2525?insecure_skip_verify=true", mail.SMTPConfig{Host: "127.0.0.1", Port: 2525, StartTLS: mail.StartTLSRequired, InsecureSkipVerify: true}},
		{"smtps://localhost:465?insecure_skip_verify=1", mail.SMTPConfig{Host: "localhost", Port: 465, ImplicitTLS: true, InsecureSkipVerify: true}},
		{"smtp://[::1]:25/?starttls=none&insecure_skip_verify=false", mail.SMTPConfig{Host: "::1", Port: 25, StartTLS: mail.StartTLSNone}},
	}
	for _, tc := range good {
		got, err := mail.ParseURL(tc.raw)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.raw, err)
			continue
		}
		if *got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, want %+v", tc.raw, *got, tc.want)
		}
	}

	const secret = "s3cr3tPW"
	bad := []string{
		"",
		"smtp.example.com:587",
		"http://user:" + secret + "@smtp.example.com",
		"smtp://user:" + secret + "@:587",
		"smtp://user:" + secret + "@smtp.example.com:99999",
		"smtp://user:" + secret + "@smtp.example.com:port",
		"smtp://user:" + secret + "%zz@smtp.example.com:587",
		"smtp://user:" + secret + " x@smtp.example.com:587",
		"smtp://user:" + secret + "@smtp.example.com:587?starttls=maybe",
		"smtp://user:" + secret + "@smtp.example.com:587?starttls=none",
		"smtps://user:" + secret + "@smtp.example.com:465?starttls=required",
		"smtp://user:" + secret + "@smtp.example.com:587?insecure_skip_verify=true",
		"smtp://user:" + secret + "@smtp.example.com:587?insecure_skip_verify=yes-please",
		"smtp://user:" + secret + "@smtp.example.com:587?tls=on",
		"smtp://user:" + secret + "@smtp.example.com:587?starttls=none&starttls=required",
		"smtp://user:" + secret + "@smtp.example.com:587/path",
		"smtp://user:" + secret + "@smtp.example.com:587#frag",
		"smtp://:" + secret + "@smtp.example.com:587",
		"smtp://user@smtp.example.com:587",
		"smtp://user:" + secret + "@10.0.0.1:587?insecure_skip_verify=true",
	}
	for _, raw := range bad {
		cfg, err := mail.ParseURL(raw)
		if err == nil {
			t.Errorf("ParseURL(%q) = %+v, want an error", raw, cfg)
			continue
		}
		if !errors.Is(err, mail.ErrInvalidURL) {
			t.Errorf("ParseURL(%q) error %v does not wrap ErrInvalidURL", raw, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("ParseURL(%q) error shows the password: %v", raw, err)
		}
	}
}

func TestSMTPConfigString(t *testing.T) {
	cfg, err := mail.ParseURL("smtp://user:hunter2@smtp.example.com:587")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.String(), "smtp://user:xxxxx@smtp.example.com:587?starttls=required"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	cfg.Host = ""
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate() = %v, want an error without the password", err)
	}
}

// Package mail sends ssogate's email: sign-in links, invitations and merge
// proposals.
//
// A Sender delivers one Message. Two senders exist:
//
//   - SMTPSender delivers through an SMTP server configured by a URL (see
//     ParseURL): smtp:// with STARTTLS (required by default), smtps:// with
//     implicit TLS, or a plain local relay with ?starttls=none.
//   - OutboxSender, the default when no SMTP server is configured, writes
//     each message as an .eml file into a directory and logs one line; the
//     demo's outbox page lists and reads them back.
//
// Queue wraps any Sender with a buffered background worker and retries with
// backoff, so a request handler never waits on a mail server; SendNow sends
// synchronously with the same retries for callers that must report failure.
//
// Render builds a Message (subject, plain text and HTML) from the embedded
// templates "signin_link", "invite" and "merge_proposal".
//
// Messages carry sign-in links, which are credentials: nothing in this
// package logs a message body or an SMTP password.
package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one email to send. At least one of Text and HTML must be set;
// when both are, the mail is multipart/alternative.
type Message struct {
	To      []string // addresses, optionally with display names ("Ann <ann@example.com>")
	Subject string
	Text    string // text/plain body
	HTML    string // text/html body
}

// Sender delivers a message. Implementations must be safe for concurrent use.
type Sender interface {
	Send(ctx context.Context, m *Message) error
}

// ErrInvalidMessage is wrapped by the errors returned for messages that can
// never be sent (no recipient, a malformed address, no body). Queue does not
// retry them.
var ErrInvalidMessage = errors.New("invalid message")

// userAgent is the X-Mailer / User-Agent value of every message.
const userAgent = "ssogate"

// validate checks m before any I/O.
func (m *Message) validate() error {
	if m == nil {
		return fmt.Errorf("mail: %w: nil message", ErrInvalidMessage)
	}
	if len(m.To) == 0 {
		return fmt.Errorf("mail: %w: no recipient", ErrInvalidMessage)
	}
	for _, to := range m.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return fmt.Errorf("mail: %w: recipient %q: %w", ErrInvalidMessage, to, err)
		}
	}
	if strings.TrimSpace(m.Subject) == "" {
		return fmt.Errorf("mail: %w: empty subject", ErrInvalidMessage)
	}
	if m.Text == "" && m.HTML == "" {
		return fmt.Errorf("mail: %w: no body", ErrInvalidMessage)
	}
	return nil
}

// clone copies m so later changes by the caller do not affect a queued send.
func (m *Message) clone() *Message {
	c := *m
	c.To = append([]string(nil), m.To...)
	return &c
}

// cleanSubject folds line breaks and runs of white space into single spaces.
func cleanSubject(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// parseFrom checks a From mailbox such as "Acme SSO <sso@example.com>".
func parseFrom(from string) (*mail.Address, error) {
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("mail: invalid from address %q: %w", from, err)
	}
	if _, domain, ok := strings.Cut(addr.Address, "@"); !ok || domain == "" {
		return nil, fmt.Errorf("mail: invalid from address %q: no domain", from)
	}
	return addr, nil
}

// build turns a validated message into a go-mail message with Date,
// Message-ID (in the From domain) and, when both bodies are set, a
// multipart/alternative body.
func build(from *mail.Address, m *Message, now time.Time) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(from)
	if err := msg.To(m.To...); err != nil {
		return nil, fmt.Errorf("mail: %w: recipients: %w", ErrInvalidMessage, err)
	}
	msg.Subject(cleanSubject(m.Subject))
	msg.SetDateWithValue(now)
	_, domain, _ := strings.Cut(from.Address, "@")
	msg.SetMessageIDWithValue(fmt.Sprintf("%d.%s@%s", now.UnixNano(), randomHex(8), domain))
	msg.SetUserAgent(userAgent)
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	switch {
	case m.Text != "" && m.HTML != "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	case m.Text != "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	default:
		msg.SetBodyString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

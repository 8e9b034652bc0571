package smtptest

import (
	"bytes"
	"fmt"
	"net/mail"

	ssomail "github.com/ssogate/ssogate/mail"
)

// parse fills Subject, Text, HTML and Header from Data, with the same
// reader the outbox uses (mail.ParseMessage).
func (r *Received) parse() {
	msg, err := mail.ReadMessage(bytes.NewReader(r.Data))
	if err != nil {
		r.ParseError = fmt.Errorf("read message: %w", err)
		return
	}
	r.Header = msg.Header
	m, err := ssomail.ParseMessage(bytes.NewReader(r.Data))
	if err != nil {
		r.ParseError = err
		return
	}
	r.Subject, r.Text, r.HTML = m.Subject, m.Text, m.HTML
}

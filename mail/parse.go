package mail

import (
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
)

// ParseMessage reads an RFC 5322 message such as the outbox's .eml files: the
// To addresses, the decoded Subject and the first text/plain and text/html
// bodies (quoted-printable and base64 are decoded, CRLF becomes LF).
func ParseMessage(r io.Reader) (*Message, error) {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return nil, fmt.Errorf("mail: parse message: %w", err)
	}
	m, err := parseHeader(msg.Header)
	if err != nil {
		return nil, err
	}
	if err := walkBody(m, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, 0); err != nil {
		return nil, fmt.Errorf("mail: parse message body: %w", err)
	}
	return m, nil
}

// parseHeader returns a Message with To and Subject from h.
func parseHeader(h mail.Header) (*Message, error) {
	m := &Message{}
	if h.Get("To") != "" {
		list, err := h.AddressList("To")
		if err != nil {
			return nil, fmt.Errorf("mail: parse To header: %w", err)
		}
		for _, a := range list {
			if a.Name == "" {
				m.To = append(m.To, a.Address)
			} else {
				m.To = append(m.To, a.String())
			}
		}
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil {
		return nil, fmt.Errorf("mail: parse Subject header: %w", err)
	}
	m.Subject = subject
	return m, nil
}

// maxDepth bounds multipart nesting.
const maxDepth = 8

func walkBody(m *Message, contentType, encoding string, body io.Reader, depth int) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		if depth >= maxDepth {
			return fmt.Errorf("multipart nested deeper than %d", maxDepth)
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart() // raw: the transfer encoding is decoded below
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", mediaType, err)
			}
			err = walkBody(m, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, depth+1)
			if err != nil {
				return err
			}
		}
	}
	if mediaType != "text/plain" && mediaType != "text/html" {
		return nil
	}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body) // skips CR and LF
	case "", "7bit", "8bit", "binary":
	default:
		return fmt.Errorf("%s: unknown transfer encoding %q", mediaType, encoding)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("%s: %w", mediaType, err)
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	if mediaType == "text/plain" && m.Text == "" {
		m.Text = text
	} else if mediaType == "text/html" && m.HTML == "" {
		m.HTML = text
	}
	return nil
}

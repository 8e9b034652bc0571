package mail

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// DefaultOutboxFrom is the From mailbox of outbox messages when
// OutboxSender.From is empty.
const DefaultOutboxFrom = "ssogate <ssogate@localhost>"

// OutboxSender is the sender used when no SMTP server is configured: it writes
// each message as an RFC 5322 .eml file named "<unix-nanos>-<random>.eml"
// into Dir (created 0700; files 0600) and logs one line with the recipients
// and subject (never the body: it holds sign-in links). It is safe for
// concurrent use.
type OutboxSender struct {
	Dir    string
	Logger *zap.Logger // nil: no log
	From   string      // From mailbox; "" means DefaultOutboxFrom
}

// OutboxEntry describes one message in the outbox.
type OutboxEntry struct {
	Name    string // file name, for Read
	Time    time.Time
	To      []string
	Subject string
}

// ErrBadOutboxName is wrapped by Read for names that are not a plain .eml
// file name in the outbox.
var ErrBadOutboxName = errors.New("invalid outbox file name")

// Send writes m to the outbox.
func (o *OutboxSender) Send(ctx context.Context, m *Message) error {
	if err := m.validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	fromStr := o.From
	if fromStr == "" {
		fromStr = DefaultOutboxFrom
	}
	from, err := parseFrom(fromStr)
	if err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	now := time.Now()
	msg, err := build(from, m, now)
	if err != nil {
		return err
	}
	if o.Dir == "" {
		return errors.New("mail: outbox: no directory configured")
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("mail: outbox: create %s: %w", o.Dir, err)
	}
	name := fmt.Sprintf("%d-%s.eml", now.UnixNano(), randomHex(6))
	// Write under a dot name and rename, so List never sees a partial file.
	tmp := filepath.Join(o.Dir, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	_, werr := msg.WriteTo(f)
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("mail: outbox: write %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(o.Dir, name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("mail: outbox: %w", err)
	}
	if o.Logger != nil {
		o.Logger.Info("mail written to outbox",
			zap.Strings("to", m.To), zap.String("subject", cleanSubject(m.Subject)), zap.String("file", name))
	}
	return nil
}

// List returns the outbox's messages, newest first. A missing directory is an
// empty outbox.
func (o *OutboxSender) List() ([]OutboxEntry, error) {
	dirents, err := os.ReadDir(o.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mail: outbox: list %s: %w", o.Dir, err)
	}
	var entries []OutboxEntry
	for _, d := range dirents {
		if !d.Type().IsRegular() || !validOutboxName(d.Name()) {
			continue
		}
		e, err := o.entry(d.Name())
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b OutboxEntry) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(b.Name, a.Name)
	})
	return entries, nil
}

func (o *OutboxSender) entry(name string) (OutboxEntry, error) {
	f, err := os.Open(filepath.Join(o.Dir, name))
	if err != nil {
		return OutboxEntry{}, fmt.Errorf("mail: outbox: %w", err)
	}
	defer f.Close()
	msg, err := mail.ReadMessage(f)
	if err != nil {
		return OutboxEntry{}, fmt.Errorf("mail: outbox: read %s: %w", name, err)
	}
	m, err := parseHeader(msg.Header)
	if err != nil {
		return OutboxEntry{}, fmt.Errorf("mail: outbox: read %s: %w", name, err)
	}
	e := OutboxEntry{Name: name, To: m.To, Subject: m.Subject}
	stamp, _, _ := strings.Cut(name, "-")
	if ns, err := strconv.ParseInt(stamp, 10, 64); err == nil {
		e.Time = time.Unix(0, ns)
	} else if t, err := msg.Header.Date(); err == nil {
		e.Time = t
	}
	return e, nil
}

// Read returns the message stored under name (as listed by List). Names with
// path separators, or that are not .eml files, are refused.
func (o *OutboxSender) Read(name string) (*Message, error) {
	if !validOutboxName(name) {
		return nil, fmt.Errorf("mail: outbox: %w: %q", ErrBadOutboxName, name)
	}
	f, err := os.Open(filepath.Join(o.Dir, name))
	if err != nil {
		return nil, fmt.Errorf("mail: outbox: %w", err)
	}
	defer f.Close()
	m, err := ParseMessage(f)
	if err != nil {
		return nil, fmt.Errorf("mail: outbox: read %s: %w", name, err)
	}
	return m, nil
}

func validOutboxName(name string) bool {
	return strings.HasSuffix(name, ".eml") && !strings.HasPrefix(name, ".") &&
		!strings.ContainsAny(name, `/\`+"\x00") && filepath.IsLocal(name) && filepath.Base(name) == name
}

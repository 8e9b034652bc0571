package mail_test

import (
	"bytes"
	"context"
	"errors"
	stdmail "net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ssogate/ssogate/mail"
)

func TestOutbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	core, logs := observer.New(zapcore.DebugLevel)
	o := &mail.OutboxSender{Dir: dir, Logger: zap.New(core)}

	if list, err := o.List(); err != nil || len(list) != 0 {
		t.Fatalf("List() on a missing dir = %v, %v", list, err)
	}
	first := testMessage("Ann <ann@example.org>")
	second := testMessage("bob@example.net", "carol@example.net")
	second.Subject = "Invitation: Grüße from Acme"
	for _, m := range []*mail.Message{first, second} {
		if err := o.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}

	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode = %v, %v; want 0700", fi.Mode(), err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 2 {
		t.Fatalf("files = %v", files)
	}
	name := regexp.MustCompile(`^\d+-[0-9a-f]+\.eml$`)
	for _, f := range files {
		fi, _ := os.Stat(f)
		if fi.Mode().Perm() != 0o600 || !name.MatchString(filepath.Base(f)) {
			t.Errorf("%s: mode %v", filepath.Base(f), fi.Mode())
		}
		raw, _ := os.ReadFile(f)
		parsed, err := stdmail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s is not RFC 5322: %v", f, err)
		}
		for _, h := range []string{"From", "To", "Subject", "Date", "Message-Id", "Mime-Version", "Content-Type"} {
			if parsed.Header.Get(h) == "" {
				t.Errorf("%s has no %s header", filepath.Base(f), h)
			}
		}
	}

	list, err := o.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("List() = %v, %v", list, err)
	}
	if list[0].Subject != second.Subject || list[1].Subject != first.Subject {
		t.Errorf("List not newest first: %q, %q", list[0].Subject, list[1].Subject)
	}
	if strings.Join(list[0].To, ",") != "bob@example.net,carol@example.net" || list[0].Time.IsZero() {
		t.Errorf("entry = %+v", list[0])
	}
	got, err := o.Read(list[1].Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != first.Subject || got.Text != first.Text || got.HTML != first.HTML || got.To[0] != `"Ann" <ann@example.org>` {
		t.Errorf("Read = %+v, want %+v", got, first)
	}

	for _, bad := range []string{"../x", "../x.eml", "sub/x.eml", `sub\x.eml`, "/etc/passwd", ".hidden.eml", "x.txt", ""} {
		if _, err := o.Read(bad); !errors.Is(err, mail.ErrBadOutboxName) {
			t.Errorf("Read(%q) = %v, want ErrBadOutboxName", bad, err)
		}
	}

	entries := logs.FilterMessage("mail written to outbox").All()
	if len(entries) != 2 {
		t.Fatalf("%d log lines, want 2", len(entries))
	}
	for _, e := range entries {
		if e.ContextMap()["subject"] == nil || e.ContextMap()["to"] == nil {
			t.Errorf("log fields = %v", e.ContextMap())
		}
		for _, v := range e.ContextMap() {
			if s, ok := v.(string); ok && strings.Contains(s, "magic/tok") {
				t.Errorf("log shows the sign-in link: %v", e.ContextMap())
			}
		}
	}
}

func TestOutboxRejectsInvalid(t *testing.T) {
	o := &mail.OutboxSender{Dir: t.TempDir()}
	if err := o.Send(context.Background(), &mail.Message{Subject: "x", Text: "y"}); !errors.Is(err, mail.ErrInvalidMessage) {
		t.Errorf("Send without recipients = %v", err)
	}
	if list, _ := o.List(); len(list) != 0 {
		t.Errorf("an invalid message was written: %v", list)
	}
}

package mail_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ssogate/ssogate/internal/smtptest"
	"github.com/ssogate/ssogate/mail"
)

func fastBackoff(int) time.Duration { return 5 * time.Millisecond }

func plainSender(t *testing.T, srv *smtptest.Server) *mail.SMTPSender {
	return newSender(t, mustParse(t, "smtp://"+srv.Addr+"?starttls=none"))
}

// waitUntil polls cond for up to 5s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestQueueRetriesThenDelivers(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailNext(2)
	core, logs := observer.New(zapcore.DebugLevel)
	q := mail.NewQueue(plainSender(t, srv), zap.New(core), mail.QueueOptions{Backoff: fastBackoff})
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); <-q.Done() }()
	q.Start(ctx)

	if err := q.Enqueue(testMessage("ann@example.org")); err != nil {
		t.Fatal(err)
	}
	srv.WaitFor(t, 1, 5*time.Second)
	waitUntil(t, "Sent() == 1", func() bool { return q.Sent() == 1 })
	time.Sleep(50 * time.Millisecond) // a duplicate would show up here
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages arrived, want 1", n)
	}
	if srv.Transactions() != 3 || q.Failed() != 0 {
		t.Errorf("transactions %d, failed %d; want 3, 0", srv.Transactions(), q.Failed())
	}
	warns := logs.FilterMessage("mail send attempt failed").FilterLevelExact(zapcore.WarnLevel).All()
	if len(warns) != 2 {
		t.Fatalf("%d warnings, want 2", len(warns))
	}
	for i, w := range warns {
		if got := w.ContextMap()["attempt"]; got != int64(i+1) {
			t.Errorf("warning %d: attempt = %v", i, got)
		}
		if w.ContextMap()["error"] == nil {
			t.Errorf("warning %d has no error", i)
		}
	}
}

func TestQueueGivesUp(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailNext(100)
	core, logs := observer.New(zapcore.DebugLevel)
	q := mail.NewQueue(plainSender(t, srv), zap.New(core), mail.QueueOptions{Attempts: 3, Backoff: fastBackoff})
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); <-q.Done() }()
	q.Start(ctx)

	if err := q.Enqueue(testMessage("ann@example.org")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "Failed() == 1", func() bool { return q.Failed() == 1 })
	if srv.Transactions() != 3 || q.Sent() != 0 || len(srv.Messages()) != 0 {
		t.Errorf("transactions %d, sent %d, messages %d; want 3, 0, 0", srv.Transactions(), q.Sent(), len(srv.Messages()))
	}
	errs := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(errs) != 1 {
		t.Fatalf("%d error logs, want 1: %v", len(errs), errs)
	}
	f := errs[0].ContextMap()
	if f["subject"] != "Sign in to Acme" || f["error"] == nil {
		t.Errorf("error log fields = %v", f)
	}
	if to, _ := f["to"].([]any); len(to) != 1 || to[0] != "ann@example.org" {
		t.Errorf("error log to = %#v", f["to"])
	}
	for _, e := range logs.All() {
		if e.ContextMap()["text"] != nil || e.ContextMap()["html"] != nil {
			t.Errorf("log %q shows a body", e.Message)
		}
	}

	// SendNow: same retries, synchronous, the error reaches the caller.
	if err := q.SendNow(context.Background(), testMessage("bob@example.net")); err == nil {
		t.Fatal("SendNow succeeded against a failing server")
	}
	if q.Failed() != 2 || srv.Transactions() != 6 {
		t.Errorf("failed %d, transactions %d; want 2, 6", q.Failed(), srv.Transactions())
	}
}

type funcSender func(ctx context.Context, m *mail.Message) error

func (f funcSender) Send(ctx context.Context, m *mail.Message) error { return f(ctx, m) }

func TestQueueEnqueueFull(t *testing.T) {
	q := mail.NewQueue(funcSender(func(context.Context, *mail.Message) error { return nil }), nil, mail.QueueOptions{Buffer: 2})
	for i := range 2 {
		if err := q.Enqueue(testMessage("ann@example.org")); err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
	}
	if err := q.Enqueue(testMessage("ann@example.org")); !errors.Is(err, mail.ErrQueueFull) {
		t.Fatalf("Enqueue on a full buffer = %v, want ErrQueueFull", err)
	}
	if err := q.Enqueue(&mail.Message{}); !errors.Is(err, mail.ErrInvalidMessage) {
		t.Errorf("Enqueue(empty) = %v, want ErrInvalidMessage", err)
	}
	if q.Pending() != 2 {
		t.Errorf("Pending() = %d", q.Pending())
	}
}

func TestQueueFlushesOnStop(t *testing.T) {
	var sent atomic.Int64
	q := mail.NewQueue(funcSender(func(context.Context, *mail.Message) error { sent.Add(1); return nil }), nil, mail.QueueOptions{})
	for range 3 {
		if err := q.Enqueue(testMessage("ann@example.org")); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q.Start(ctx)
	<-q.Done()
	if sent.Load() != 3 || q.Sent() != 3 {
		t.Errorf("sent %d (counted %d), want 3 flushed", sent.Load(), q.Sent())
	}
	if err := q.Enqueue(testMessage("ann@example.org")); !errors.Is(err, mail.ErrQueueStopped) {
		t.Errorf("Enqueue after stop = %v, want ErrQueueStopped", err)
	}
}

func TestQueueLogsUnsentOnStop(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	failing := funcSender(func(context.Context, *mail.Message) error { return errors.New("server down") })
	q := mail.NewQueue(failing, zap.New(core), mail.QueueOptions{
		Backoff:      func(int) time.Duration { return time.Hour },
		FlushTimeout: 100 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	q.Start(ctx)
	for range 2 {
		if err := q.Enqueue(testMessage("ann@example.org")); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "a first attempt", func() bool { return logs.FilterMessage("mail send attempt failed").Len() > 0 })
	cancel()
	select {
	case <-q.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("worker did not stop")
	}
	summary := logs.FilterMessage("mail queue stopped with unsent messages").All()
	if len(summary) != 1 || summary[0].ContextMap()["unsent"] != int64(2) {
		t.Fatalf("summary logs = %v", summary)
	}
	if q.Failed() != 0 || q.Sent() != 0 {
		t.Errorf("failed %d sent %d, want 0 0 (unsent is not failed)", q.Failed(), q.Sent())
	}
}

func TestDefaultBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, w := range want {
		if got := mail.DefaultBackoff(i + 1); got != w {
			t.Errorf("DefaultBackoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := mail.DefaultBackoff(40); got != time.Minute {
		t.Errorf("DefaultBackoff(40) = %v", got)
	}
}

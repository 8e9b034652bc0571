package mail

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// QueueOptions tune a Queue; zero values take the defaults.
type QueueOptions struct {
	Attempts int                             // tries per message; default 5
	Backoff  func(attempt int) time.Duration // wait after failed attempt n (1-based); default 1s, 2s, 4s, 8s, … (capped at 1m)
	Buffer   int                             // messages waiting to be sent; default 1000
	// FlushTimeout is how long a stopping worker keeps sending what is
	// queued; default 5s.
	FlushTimeout time.Duration
}

// ErrQueueFull is returned by Enqueue when the buffer is full.
var ErrQueueFull = errors.New("mail queue is full")

// ErrQueueStopped is returned by Enqueue after the worker has stopped.
var ErrQueueStopped = errors.New("mail queue is stopped")

// Queue sends messages through a Sender in the background, with retries.
// Enqueue never blocks and never drops a message silently: it returns an
// error when the buffer is full. Every failed attempt is logged at Warn; a
// message that fails every attempt is logged at Error and counted.
type Queue struct {
	sender Sender
	log    *zap.Logger
	opts   QueueOptions
	ch     chan *Message

	mu      sync.RWMutex // guards stopped against Enqueue
	stopped bool
	started atomic.Bool
	done    chan struct{}

	sent, failed atomic.Int64
}

// NewQueue wraps s. A nil logger logs nothing.
func NewQueue(s Sender, logger *zap.Logger, opts QueueOptions) *Queue {
	if logger == nil {
		logger = zap.NewNop()
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 1000
	}
	if opts.FlushTimeout <= 0 {
		opts.FlushTimeout = 5 * time.Second
	}
	return &Queue{sender: s, log: logger, opts: opts, ch: make(chan *Message, opts.Buffer), done: make(chan struct{})}
}

// DefaultBackoff waits 1s after the first failed attempt and doubles each
// time, up to one minute.
func DefaultBackoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 7 {
		return time.Minute
	}
	return min(time.Second<<(attempt-1), time.Minute)
}

// Enqueue queues a copy of m for the worker. It never blocks.
func (q *Queue) Enqueue(m *Message) error {
	if err := m.validate(); err != nil {
		return err
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.stopped {
		return fmt.Errorf("mail: enqueue %q: %w", m.Subject, ErrQueueStopped)
	}
	select {
	case q.ch <- m.clone():
		return nil
	default:
		return fmt.Errorf("mail: enqueue %q: %w (%d waiting)", m.Subject, ErrQueueFull, cap(q.ch))
	}
}

// Start runs the worker in a goroutine until ctx ends; then it keeps sending
// what is queued for up to QueueOptions.FlushTimeout, logs how many messages remain
// unsent, and closes Done. Later calls do nothing.
func (q *Queue) Start(ctx context.Context) {
	if !q.started.CompareAndSwap(false, true) {
		return
	}
	go q.run(ctx)
}

// Done is closed when the worker started by Start has stopped.
func (q *Queue) Done() <-chan struct{} { return q.done }

// SendNow sends m synchronously with the same retries, and returns the last
// error if every attempt failed.
func (q *Queue) SendNow(ctx context.Context, m *Message) error {
	if err := m.validate(); err != nil {
		return err
	}
	return q.deliver(ctx, m.clone())
}

// Sent is how many messages were delivered (by the worker or SendNow).
func (q *Queue) Sent() int64 { return q.sent.Load() }

// Failed is how many messages failed every attempt.
func (q *Queue) Failed() int64 { return q.failed.Load() }

// Pending is how many messages wait in the buffer.
func (q *Queue) Pending() int { return len(q.ch) }

func (q *Queue) run(ctx context.Context) {
	defer close(q.done)
	for {
		select {
		case <-ctx.Done():
			q.flush(ctx, nil)
			return
		case m := <-q.ch:
			if err := q.deliver(ctx, m); errors.Is(err, errInterrupted) {
				q.flush(ctx, m)
				return
			}
		}
	}
}

// flush stops Enqueue and sends pending (interrupted mid-retry) and whatever
// is buffered, for up to QueueOptions.FlushTimeout.
func (q *Queue) flush(parent context.Context, pending *Message) {
	q.mu.Lock()
	q.stopped = true
	q.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), q.opts.FlushTimeout)
	defer cancel()

	var left []*Message
	next := func() (*Message, bool) {
		if pending != nil {
			m := pending
			pending = nil
			return m, true
		}
		select {
		case m := <-q.ch:
			return m, true
		default:
			return nil, false
		}
	}
	for m, ok := next(); ok; m, ok = next() {
		if len(left) > 0 || ctx.Err() != nil {
			left = append(left, m)
			continue
		}
		if err := q.deliver(ctx, m); errors.Is(err, errInterrupted) {
			left = append(left, m)
		}
	}
	if len(left) == 0 {
		q.log.Info("mail queue stopped", zap.Int64("sent", q.Sent()), zap.Int64("failed", q.Failed()))
		return
	}
	for _, m := range left {
		q.log.Error("mail not sent: queue stopped", zap.Strings("to", m.To), zap.String("subject", m.Subject))
	}
	q.log.Error("mail queue stopped with unsent messages", zap.Int("unsent", len(left)))
}

// errInterrupted: ctx ended before the message ran out of attempts.
var errInterrupted = errors.New("mail: delivery interrupted")

// deliver tries m up to Attempts times. It returns nil on success, the last
// error once the message has failed for good (logged and counted), or an
// error wrapping errInterrupted if ctx ended first (not counted).
func (q *Queue) deliver(ctx context.Context, m *Message) error {
	var err error
	for attempt := 1; ; attempt++ {
		if err = q.sender.Send(ctx, m); err == nil {
			q.sent.Add(1)
			return nil
		}
		final := attempt >= q.opts.Attempts || errors.Is(err, ErrInvalidMessage) || errors.Is(err, ErrPermanent)
		q.log.Warn("mail send attempt failed",
			zap.Int("attempt", attempt), zap.Int("attempts", q.opts.Attempts),
			zap.Strings("to", m.To), zap.String("subject", m.Subject), zap.Error(err))
		if !final && ctx.Err() == nil {
			t := time.NewTimer(q.opts.Backoff(attempt))
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
			}
		}
		if !final {
			return fmt.Errorf("%w after %d attempts: %w", errInterrupted, attempt, err)
		}
		q.failed.Add(1)
		q.log.Error("mail not sent",
			zap.Int("attempts", attempt), zap.Strings("to", m.To), zap.String("subject", m.Subject), zap.Error(err))
		return fmt.Errorf("mail: %q not sent after %d attempts: %w", m.Subject, attempt, err)
	}
}

package bolt

import (
	"context"
	"fmt"
)

// subscriber is one active Subscribe call.
type subscriber struct {
	id        uint64
	onMessage func(string)
}

// Publish implements store.Backend. The bolt file belongs to one process, so
// every subscriber is in this process: Publish calls each of them
// synchronously in the caller's goroutine, which makes a revocation visible
// to every cache before Publish returns. Delivery cannot be lost, so the
// subscribers' onReset is never needed.
func (b *Backend) Publish(ctx context.Context, channel, msg string) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	b.mu.Lock()
	// Copy so callbacks run without the lock: they may Publish or Subscribe
	// themselves, and a slow one must not block unrelated channels.
	subs := append([]subscriber(nil), b.subs[channel]...)
	b.mu.Unlock()
	for _, s := range subs {
		s.onMessage(msg)
	}
	return nil
}

// Subscribe implements store.Backend. The subscription is active when it
// returns and is removed when ctx ends. onReset is accepted for the
// interface but never called: in-process delivery does not drop messages.
func (b *Backend) Subscribe(ctx context.Context, channel string, onMessage func(msg string), onReset func()) error {
	if onMessage == nil {
		return fmt.Errorf("bolt: subscribe %q: nil onMessage", channel)
	}
	if err := b.check(ctx); err != nil {
		return err
	}
	b.mu.Lock()
	b.nextSubID++
	id := b.nextSubID
	b.subs[channel] = append(b.subs[channel], subscriber{id: id, onMessage: onMessage})
	b.mu.Unlock()

	go func() {
		<-ctx.Done()
		b.unsubscribe(channel, id)
	}()
	return nil
}

// unsubscribe removes subscription id from channel, dropping the channel
// entry when it was the last one so the map does not grow with dead channels.
func (b *Backend) unsubscribe(channel string, id uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.subs[channel]
	kept := make([]subscriber, 0, len(old))
	for _, s := range old {
		if s.id != id {
			kept = append(kept, s)
		}
	}
	if len(kept) == 0 {
		delete(b.subs, channel)
		return
	}
	b.subs[channel] = kept
}

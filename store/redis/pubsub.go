package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// subscribeTimeout bounds the wait for Redis to confirm a subscription.
const subscribeTimeout = 10 * time.Second

// Publish sends msg on the prefixed channel. Redis pub/sub is at most once.
func (b *Backend) Publish(ctx context.Context, channel, msg string) error {
	return wrapErr("publish", b.client.Publish(ctx, b.chanPfx+channel, msg).Err())
}

// Subscribe delivers messages on the prefixed channel to onMessage, one at
// a time on one goroutine, until ctx ends or the Backend is closed. It
// returns once Redis has confirmed the subscription.
//
// go-redis reconnects and resubscribes by itself after a network error
// (and pings every few seconds to notice a dead connection). Every
// subscription confirmation after the first one therefore marks a
// reconnect, during which messages may have been published and lost, so
// onReset (if not nil) is called then.
//
// go-redis would silently drop a message that waits a long time for a
// slow onMessage; the send timeout is set high so that instead the
// connection backs up until Redis disconnects the slow subscriber, which
// surfaces as a reconnect and thus an onReset.
func (b *Backend) Subscribe(ctx context.Context, channel string, onMessage func(msg string), onReset func()) error {
	if onMessage == nil {
		return errors.New("redis: subscribe: onMessage is nil")
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return wrapErr("subscribe", goredis.ErrClosed)
	}
	b.mu.Unlock()

	ps := b.client.Subscribe(ctx, b.chanPfx+channel)
	reply, err := ps.ReceiveTimeout(ctx, subscribeTimeout)
	if err == nil {
		if _, ok := reply.(*goredis.Subscription); !ok {
			err = fmt.Errorf("unexpected reply %T to SUBSCRIBE", reply)
		}
	}
	if err != nil {
		_ = ps.Close()
		return wrapErr("subscribe", err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = ps.Close()
		return wrapErr("subscribe", goredis.ErrClosed)
	}
	b.subs[ps] = struct{}{}
	b.mu.Unlock()

	ch := ps.ChannelWithSubscriptions(
		goredis.WithChannelSize(256),
		goredis.WithChannelSendTimeout(24*time.Hour),
	)
	go func() {
		defer func() {
			b.mu.Lock()
			delete(b.subs, ps)
			b.mu.Unlock()
			_ = ps.Close()
			// Let go-redis' reader goroutine finish: it may be blocked
			// handing us a message, and closes ch once it sees the close.
			for range ch {
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return // PubSub closed (Backend.Close)
				}
				switch m := m.(type) {
				case *goredis.Message:
					onMessage(m.Payload)
				case *goredis.Subscription:
					if m.Kind == "subscribe" && onReset != nil {
						onReset()
					}
				}
			}
		}
	}()
	return nil
}

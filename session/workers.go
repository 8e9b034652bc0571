package session

import (
	"context"
	"time"

	"go.uber.org/zap"
)

func (m *Manager) touchLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-m.touchQ:
			tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := m.st.TouchSession(tctx, e.StoreID, time.Unix(0, e.lastSeen.Load()))
			cancel()
			if err != nil && ctx.Err() == nil {
				m.log.Debug("recording session activity", zap.Error(err))
			}
		}
	}
}

func (m *Manager) sweepLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.cache.sweep(m.Now())
		}
	}
}

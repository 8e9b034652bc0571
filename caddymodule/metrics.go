package caddymodule

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are registered once per registry (Caddy keeps one per config).
type metrics struct {
	storeErrors prometheus.Counter
	guard       *prometheus.CounterVec // outcome: pass, unauthenticated, forbidden, unavailable
	signIns     *prometheus.CounterVec // method, outcome (success or the refusal reason)
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ssogate", Name: "store_errors_total",
			Help: "Store operations that failed (the gateway fails closed).",
		}),
		guard: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ssogate", Name: "guard_requests_total",
			Help: "Guarded requests by outcome.",
		}, []string{"outcome"}),
	}
	m.signIns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ssogate", Name: "sign_ins_total",
		Help: "Sign-ins by method and outcome (success, or the refusal reason).",
	}, []string{"method", "outcome"})
	var err error
	m.storeErrors, err = register(reg, m.storeErrors)
	if err != nil {
		return nil, err
	}
	m.guard, err = register(reg, m.guard)
	if err != nil {
		return nil, err
	}
	m.signIns, err = register(reg, m.signIns)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register returns the already-registered collector when one exists, so
// several provisions in one config share counters.
func register[C prometheus.Collector](reg *prometheus.Registry, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("ssogate: registering metrics: %w", err)
	}
	return c, nil
}

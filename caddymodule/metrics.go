package caddymodule

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ssogate/ssogate/session"
)

// metrics are registered once per registry (Caddy keeps one per config).
type metrics struct {
	storeErrors prometheus.Counter
	guard       *prometheus.CounterVec // outcome: pass, unauthenticated, forbidden, unavailable
	signIns     *prometheus.CounterVec // method, outcome (success or the refusal reason)
	cached      prometheus.Gauge
	revoked     prometheus.CounterFunc
	scimOps     *prometheus.CounterVec   // method, resource, status
	storeOps    *prometheus.HistogramVec // op
	// metadataRefresh counts IdP metadata refreshes: updated, unchanged, failure.
	metadataRefresh *prometheus.CounterVec
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
	m.cached = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "ssogate", Name: "sessions_cached",
		Help: "Valid sessions in this instance's cache (a signed-in browser active recently)."})
	m.revoked = prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "ssogate", Name: "sessions_revoked_total",
		Help: "Sessions ended by revocation (logout, removal, deactivation, SSO enforcement)."},
		func() float64 { return float64(session.RevokedTotal()) })
	m.scimOps = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ssogate", Name: "scim_requests_total",
		Help: "SCIM requests by method, resource and status."}, []string{"method", "resource", "status"})
	m.storeOps = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "ssogate", Name: "store_operation_seconds",
		Help: "Store operation latency by operation.", Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}},
		[]string{"op"})
	m.metadataRefresh = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ssogate", Name: "idp_metadata_refreshes_total",
		Help: "Refreshes of SAML IdP metadata from its URL by result (updated, unchanged, failure)."}, []string{"result"})
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
	if m.cached, err = register(reg, m.cached); err != nil {
		return nil, err
	}
	if m.revoked, err = register(reg, m.revoked); err != nil {
		return nil, err
	}
	if m.scimOps, err = register(reg, m.scimOps); err != nil {
		return nil, err
	}
	if m.storeOps, err = register(reg, m.storeOps); err != nil {
		return nil, err
	}
	if m.metadataRefresh, err = register(reg, m.metadataRefresh); err != nil {
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

package caddymodule

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/ssogate/ssogate/provision"
	"github.com/ssogate/ssogate/store"
)

// audit stores an event and writes it as a structured log line. A failure
// to store it is logged, never silent.
func (a *App) audit(r *http.Request, e *store.AuditEvent) {
	if r != nil && e.RemoteIP == "" {
		e.RemoteIP = clientIP(r)
	}
	ctx := context.Background()
	if r != nil {
		ctx = r.Context()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := a.store.AppendAudit(ctx, e)
	fields := []zap.Field{zap.String("action", e.Action), zap.String("actor", e.Actor), zap.String("target", e.Target),
		zap.String("outcome", e.Outcome), zap.String("reason", e.Reason), zap.String("parent_id", e.ParentID),
		zap.String("org_id", e.OrgID), zap.String("remote_ip", e.RemoteIP)}
	if len(e.Details) > 0 {
		fields = append(fields, zap.Any("details", e.Details))
	}
	if err != nil {
		a.logger.Error("audit event not stored", append(fields, zap.Error(err))...)
		return
	}
	a.logger.Info("audit", fields...)
}

// auditCtx is audit for code that has no request (workers, services).
func (a *App) auditCtx(ctx context.Context, e *store.AuditEvent) {
	if r, ok := ctx.Value(requestKey{}).(*http.Request); ok {
		a.audit(r, e)
		return
	}
	a.audit(nil, e)
}

// requestKey carries the request into services so their audit events
// record the client address.
type requestKey struct{}

// clientIP is the TCP peer, or what Caddy's trusted_proxies resolved.
func clientIP(r *http.Request) string {
	if v, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && v != "" {
		return v
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// auditMappings records each membership change made by group mappings,
// naming the group that caused it.
func (a *App) auditMappings(r *http.Request, parentID, source string, changes []provision.MappingChange) {
	for _, c := range changes {
		a.audit(r, &store.AuditEvent{ParentID: parentID, OrgID: c.OrgID, Actor: "group-mappings", Action: "mapping." + string(c.Action),
			Target: c.Email, Outcome: "success", Details: map[string]string{"org": c.OrgSlug, "from": string(c.From), "to": string(c.To),
				"group": c.Group, "source": source}})
	}
}

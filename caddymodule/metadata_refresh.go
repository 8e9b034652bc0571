package caddymodule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	samlconn "github.com/ssogate/ssogate/connector/saml"
	"github.com/ssogate/ssogate/store"
)

// defaultMetadataRefresh is how often SAML connections made from a
// metadata URL fetch it again (IdPs rotate signing keys and publish
// metadata with a validUntil).
const defaultMetadataRefresh = 12 * time.Hour

var errConnectionChanged = errors.New("the connection changed during the refresh")

// metadataLoop refreshes IdP metadata of SAML connections that have a
// metadata URL, every interval, until ctx ends.
func (a *App) metadataLoop(ctx context.Context) {
	every := time.Duration(a.MetadataRefresh)
	if every < 0 {
		return // "metadata_refresh off"
	}
	if every == 0 {
		every = defaultMetadataRefresh
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !a.Healthy() {
			continue
		}
		a.refreshAllMetadata(ctx)
	}
}

// refreshAllMetadata runs one round over every parent org's connections.
func (a *App) refreshAllMetadata(ctx context.Context) {
	parents, err := a.store.ListParentOrgs(ctx)
	if err != nil {
		a.logger.Warn("metadata refresh: listing parent orgs", zap.Error(err))
		return
	}
	for _, p := range parents {
		conns, err := a.store.ListConnections(ctx, p.ID)
		if err != nil {
			a.logger.Warn("metadata refresh: listing connections", zap.String("parent_id", p.ID), zap.Error(err))
			continue
		}
		for i := range conns {
			c := &conns[i]
			if c.Type != store.ConnSAML || c.IDPMetadataURL == "" {
				continue
			}
			if err := a.refreshMetadata(ctx, c); err != nil {
				// The stored metadata keeps working until it expires.
				a.logger.Warn("metadata refresh failed; keeping the stored metadata",
					zap.String("connection", c.ID), zap.String("url", c.IDPMetadataURL), zap.Error(err))
				a.metrics.metadataRefresh.WithLabelValues("failure").Inc()
			}
		}
	}
}

// refreshMetadata fetches one connection's metadata URL and stores the
// document when it changed and is usable (parses, not expired, has an
// IdP signing key).
func (a *App) refreshMetadata(ctx context.Context, c *store.Connection) error {
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := checkIdPURL(c.IDPMetadataURL, a.AllowPrivateIdPs); err != nil {
		return err
	}
	raw, err := fetchMetadata(fctx, a.idpClient, c.IDPMetadataURL)
	if err != nil {
		return err
	}
	if bytes.Equal(raw, []byte(c.IDPMetadataXML)) {
		a.metrics.metadataRefresh.WithLabelValues("unchanged").Inc()
		return nil
	}
	if err := samlconn.CheckRefresh([]byte(c.IDPMetadataXML), raw, a.store.Now()); err != nil {
		return fmt.Errorf("new metadata refused: %w", err)
	}
	_, err = a.store.UpdateConnection(ctx, c.ID, func(x *store.Connection) error {
		// Only the connection this round read: not one changed, or deleted
		// and made again, while the document was being fetched.
		if x.ParentID != c.ParentID || x.IDPMetadataURL != c.IDPMetadataURL || x.IDPMetadataXML != c.IDPMetadataXML || !x.CreatedAt.Equal(c.CreatedAt) {
			return errConnectionChanged
		}
		x.IDPMetadataXML = string(raw)
		return nil
	})
	if errors.Is(err, errConnectionChanged) || errors.Is(err, store.ErrNotFound) {
		return nil // the next round looks again
	}
	if err != nil {
		return fmt.Errorf("storing new metadata: %w", err)
	}
	a.metrics.metadataRefresh.WithLabelValues("updated").Inc()
	a.logger.Info("IdP metadata updated", zap.String("connection", c.ID), zap.String("url", c.IDPMetadataURL))
	a.audit(nil, &store.AuditEvent{ParentID: c.ParentID, Actor: "ssogate", Action: "connection.metadata_refresh",
		Target: c.ID, Outcome: "success", Details: map[string]string{"url": c.IDPMetadataURL}})
	return nil
}

package caddymodule

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ssogate/ssogate/provision"
	"github.com/ssogate/ssogate/scim"
)

// scimHandler builds the SCIM 2.0 endpoint for this site. Deactivations
// end sessions in the same request; group changes run group mappings.
func (h *Handler) scimHandler() (http.Handler, error) {
	a := h.app
	hd, err := scim.NewHandler(scim.Config{
		Store: a.store,
		Revoke: func(ctx context.Context, userID string) error {
			_, err := a.sessions.RevokeUser(ctx, userID)
			return err
		},
		Refresh:  func(ctx context.Context, userID string) error { return a.sessions.Refresh(ctx, userID) },
		Audit:    a.auditCtx,
		Logger:   h.logger.Named("scim"),
		BasePath: h.BasePath + "/scim/v2",
		OnGroupsChanged: func(ctx context.Context, orgID string, userIDs []string) error {
			o, err := a.store.GetOrg(ctx, orgID)
			if err != nil {
				return err
			}
			for _, id := range userIDs {
				u, err := a.store.GetUser(ctx, id)
				if err != nil {
					continue
				}
				changes, err := provision.ApplyMappings(ctx, a.store, o.ParentID, u, a.GroupPrefix)
				if err != nil {
					return fmt.Errorf("applying group mappings for %s: %w", u.Email, err)
				}
				if len(changes) > 0 {
					a.auditMappings(requestFrom(ctx), o.ParentID, "scim", changes)
					_ = a.sessions.Refresh(ctx, id)
				}
			}
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("ssogate: building the SCIM endpoint: %w", err)
	}
	return hd, nil
}

// requestFrom returns the request services carry in their context, if any.
func requestFrom(ctx context.Context) *http.Request {
	r, _ := ctx.Value(requestKey{}).(*http.Request)
	return r
}

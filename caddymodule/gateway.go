package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/ssogate/ssogate/ui"
)

// buildRoutes maps ssogate's own endpoints under base_path.
func (h *Handler) buildRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	b := h.BasePath
	mux.HandleFunc("GET "+b+"/healthz", h.serveHealth)
	mux.HandleFunc("GET "+b+"/logout", h.serveLogout)
	mux.HandleFunc("POST "+b+"/logout", h.serveLogout)
	mux.HandleFunc("GET "+b+"/auth", h.serveForwardAuth)
	mux.HandleFunc("GET "+b+"/.well-known/jwks.json", h.serveJWKS)
	mux.HandleFunc("GET "+b+"/login", h.serveLogin)
	mux.HandleFunc("POST "+b+"/login", h.servePostLogin)
	mux.HandleFunc("GET "+b+"/magic/{token}", h.serveMagic)
	mux.HandleFunc("GET "+b+"/social/{provider}/start", h.serveSocialStart)
	mux.HandleFunc("GET "+b+"/social/{provider}/callback", h.serveSocialCallback)
	mux.HandleFunc("POST "+b+"/magic/{token}", h.servePostMagic)
	mux.HandleFunc("GET "+b+"/saml/{connection}/metadata", h.serveSPMetadata)
	mux.HandleFunc("POST "+b+"/saml/{connection}/acs", h.serveACS)
	mux.HandleFunc("GET "+b+"/oidc/{connection}/callback", h.serveOIDCCallback)
	h.apiRoutes(mux)
	if sh, err := h.scimHandler(); err == nil {
		// Requests carry themselves in their context for audit addresses.
		mux.Handle(b+"/scim/v2/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusRecorder{ResponseWriter: w}
			defer func() {
				h.app.metrics.scimOps.WithLabelValues(r.Method, scimResource(r.URL.Path), strconv.Itoa(rec.status)).Inc()
			}()
			if !h.scimAllowed(rec, r) {
				return
			}
			sh.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), requestKey{}, r)))
		}))
	} else {
		h.logger.Error("SCIM endpoint disabled", zap.Error(err))
	}
	mux.HandleFunc(b+"/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such ssogate endpoint")
	})
	return mux
}

func (h *Handler) serveHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, code := "ok", http.StatusOK
	body := map[string]any{"storage": h.app.backend.Name()}
	if err := h.app.store.Ping(ctx); err != nil {
		h.app.storeFailed(err)
		status, code = "unavailable", http.StatusServiceUnavailable
		body["error"] = "store unreachable"
	}
	body["status"] = status
	body["sessions_cached"] = h.app.sessions.CacheSize()
	writeJSON(w, code, body)
}

func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) {
	if c := cookieValue(r, h.cookieName); c != "" {
		if err := h.app.sessions.Logout(r.Context(), c); err != nil {
			h.logger.Error("ending session at logout", zap.Error(err))
			h.storeDown(w, r, err)
			return
		}
	}
	h.clearCookie(w)
	_ = ui.Render(w, http.StatusOK, "notice.html", ui.Page{
		Title: "Signed out", BasePath: h.BasePath,
		Message: "You have been signed out.",
		LinkURL: h.BasePath + "/login", LinkText: "Sign in again",
	})
}

// serveForwardAuth answers nginx auth_request, Traefik ForwardAuth and
// Caddy forward_auth: 200 with identity headers, or 401/302.
func (h *Handler) serveForwardAuth(w http.ResponseWriter, r *http.Request) {
	e, status := h.authenticate(r)
	switch status {
	case http.StatusOK:
		if err := h.attachIdentity(r, w.Header(), e); err != nil {
			h.logger.Error("signing identity jwt", zap.Error(err))
			_ = h.unavailable(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	case http.StatusUnauthorized:
		uri := r.Header.Get("X-Forwarded-Uri")
		if uri == "" {
			uri = r.Header.Get("X-Original-Uri")
		}
		// The proxy in front forwards the original method.
		if m := r.Header.Get("X-Forwarded-Method"); m != "" && m != http.MethodGet && m != http.MethodHead {
			writeJSONError(w, http.StatusUnauthorized, "unauthenticated", "sign-in required")
			return
		}
		h.unauthenticated(w, r, uri, true)
	case http.StatusForbidden:
		_ = h.forbidden(w, r)
	default:
		_ = h.unavailable(w, r)
	}
}

func (h *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(h.app.sessions.Keys().JWKS())
}

// setSessionCookie sends the session cookie (HttpOnly, SameSite=Lax,
// Secure and __Host- on HTTPS).
func (h *Handler) setSessionCookie(w http.ResponseWriter, value string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: h.cookieName, Value: value, Path: "/", Expires: expires,
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode})
}

func (h *Handler) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: h.cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONError writes the admin API's error shape.
func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

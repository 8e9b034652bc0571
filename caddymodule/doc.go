// Package caddymodule registers ssogate with Caddy: the `ssogate` app
// (shared state: store, sessions, workers), the `http.handlers.ssogate`
// handler (the gateway routes under base_path and the guard in front of
// everything else), their Caddyfile syntax, and admin-API routes.
package caddymodule

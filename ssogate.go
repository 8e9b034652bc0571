// Package ssogate is the plugin entry point for custom Caddy builds:
// `xcaddy build --with github.com/ssogate/ssogate` imports it, which
// registers the ssogate app and handler (package caddymodule).
package ssogate

import (
	// Registers the Caddy modules.
	_ "github.com/ssogate/ssogate/caddymodule"
)

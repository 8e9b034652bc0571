// Command ssogate is Caddy with the ssogate modules compiled in: Caddy's
// own CLI (run, start, reload, validate, list-modules, …) plus ssogate's
// subcommands (admin, demo).
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules and ssogate's.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/ssogate/ssogate/caddymodule"
	// `ssogate demo`.
	_ "github.com/ssogate/ssogate/demo"
)

func main() {
	caddycmd.Main()
}

package demo

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "demo",
		Usage: "[--redis <url>] [--verbose] [--gateway-port <port>] …",
		Short: "Run the whole of ssogate on 127.0.0.1, with IdPs, DNS and a walkthrough",
		Long: `Runs, all on 127.0.0.1 and with a throw-away store: the gateway (Caddy with
ssogate), a demo app behind it that shows who is signed in, a SAML IdP and an
OIDC provider with a few people, a DNS server for acme.test, and a page with
the DNS records and the mail outbox. It seeds the parent org "Acme" and
prints a walkthrough: capture the domain, add and enforce SSO, provision by
SCIM, map groups, remove a member. Ctrl-C stops everything and removes the
store (with --redis, the demo's keys).`,
		CobraFunc: func(cmd *cobra.Command) {
			cfg := DefaultConfig()
			f := cmd.Flags()
			f.StringVar(&cfg.Redis, "redis", "", "store everything in this Redis (redis://host:port/db) instead of a bolt file")
			f.IntVar(&cfg.GatewayPort, "gateway-port", cfg.GatewayPort, "port of the gateway (the app behind ssogate)")
			f.IntVar(&cfg.AppPort, "app-port", cfg.AppPort, "port of the demo app itself")
			f.IntVar(&cfg.SAMLPort, "saml-port", cfg.SAMLPort, "port of the SAML IdP")
			f.IntVar(&cfg.OIDCPort, "oidc-port", cfg.OIDCPort, "port of the OIDC provider")
			f.IntVar(&cfg.ToolsPort, "tools-port", cfg.ToolsPort, "port of the demo tools (DNS records, mail outbox)")
			f.IntVar(&cfg.DNSPort, "dns-port", cfg.DNSPort, "port of the DNS server (UDP and TCP)")
			f.IntVar(&cfg.AdminPort, "admin-port", cfg.AdminPort, "port of Caddy's admin endpoint")
			f.BoolVar(&cfg.Verbose, "verbose", false, "log to stderr instead of a file in the demo's folder")
			cmd.Args = cobra.NoArgs
			cmd.RunE = func(cmd *cobra.Command, _ []string) error {
				ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
				defer stop()
				return run(ctx, cmd, cfg)
			}
		},
	})
}

func run(ctx context.Context, cmd *cobra.Command, cfg Config) error {
	out := cmd.OutOrStdout()
	fmt.Fprintln(cmd.ErrOrStderr(), "starting the ssogate demo…")
	d, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	Print(out, d.Env)
	<-ctx.Done()
	fmt.Fprintln(cmd.ErrOrStderr(), "\nstopping the ssogate demo…")
	if err := d.Close(); err != nil {
		return fmt.Errorf("stopping the demo: %w", err)
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "stopped; the demo's store is gone.")
	return nil
}

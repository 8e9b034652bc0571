package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "admin",
		Short: "Administer a running ssogate through Caddy's admin endpoint",
		Long: `Commands that talk to a running ssogate through Caddy's admin API
(local-only by default), so they work while the server holds the bolt
file, and with Redis alike.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(bootstrapCommand())
		},
	})
}

func bootstrapCommand() *cobra.Command {
	var parent, org, owner, address string
	var asJSON bool
	c := &cobra.Command{
		Use:   "bootstrap --parent <name> --org <slug> --owner <email>",
		Short: "Create a parent organization, its first org and primary owner; print an API key and a sign-in link",
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, _ := json.Marshal(BootstrapRequest{Parent: parent, Org: org, Owner: owner})
			var res BootstrapResult
			if err := adminCall(address, "/ssogate/bootstrap", body, &res); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(res)
			}
			fmt.Fprintf(out, "parent org: %s\norg:        %s\nAPI key:    %s   (shown once; use as Authorization: Bearer)\n", res.ParentID, res.OrgID, res.APIKey)
			if res.LoginURL != "" {
				fmt.Fprintf(out, "sign-in:    %s   (single use, 7 days)\n", res.LoginURL)
			}
			return nil
		},
	}
	c.Flags().StringVar(&parent, "parent", "", "name of the new parent organization")
	c.Flags().StringVar(&org, "org", "", "slug of its first org")
	c.Flags().StringVar(&owner, "owner", "", "email of the primary owner")
	c.Flags().StringVar(&address, "address", "localhost:2019", "Caddy's admin endpoint")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// adminCall POSTs body to Caddy's admin endpoint and decodes the answer.
func adminCall(address, path string, body []byte, out any) error {
	if !strings.Contains(address, "://") {
		address = "http://" + address
	}
	client := &http.Client{Timeout: 30 * time.Second}
	req, err := http.NewRequest(http.MethodPost, strings.TrimSuffix(address, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	// Caddy's admin endpoint checks Origin against the address it listens on.
	req.Header.Set("Origin", strings.TrimSuffix(address, "/"))
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the ssogate server's admin endpoint at %s (is it running? see --address): %w", address, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(raw)))
	}
	return json.Unmarshal(raw, out)
}

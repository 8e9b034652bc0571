package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
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
file, and with Redis alike. Every command takes --address (Caddy's admin
endpoint, default localhost:2019) and --json (print the answer as JSON).`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(bootstrapCommand(), parentCommand(), orgCommand(), apiKeyCommand(),
				domainCommand(), sessionCommand(), mergeCommand())
		},
	})
}

// adminFlags are the flags every `ssogate admin` command has.
type adminFlags struct {
	address string
	asJSON  bool
}

func (f *adminFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.address, "address", "localhost:2019", "Caddy's admin endpoint")
	c.Flags().BoolVar(&f.asJSON, "json", false, "print JSON")
}

// run calls the admin endpoint and prints the answer: as JSON with
// --json, else decoded into out and printed by human.
func (f *adminFlags) run(cmd *cobra.Command, method, path string, query url.Values, body any, out any, human func(io.Writer)) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return fmt.Errorf("encoding the request: %w", err)
		}
	}
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	answer, err := adminRequest(f.address, method, path, raw)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if f.asJSON {
		_, err := fmt.Fprintln(w, strings.TrimSpace(string(answer)))
		return err
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("decoding the server's answer: %w", err)
	}
	human(w)
	return nil
}

// leaf makes a subcommand with no positional arguments and the common flags.
func leaf(use, short string, f *adminFlags, run func(*cobra.Command) error) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd) }}
	f.add(c)
	return c
}

// group makes a command that only holds subcommands: alone it shows its
// help; with a wrong subcommand it says so (whatever flags follow).
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
		RunE:               func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	c.AddCommand(subs...)
	return c
}

func required(c *cobra.Command, flags ...string) *cobra.Command {
	for _, f := range flags {
		_ = c.MarkFlagRequired(f)
	}
	return c
}

func table(w io.Writer, header string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// plural is "1 org", "2 orgs" (or the plural given).
func plural(n int, one string, many ...string) string {
	if n == 1 {
		return "1 " + one
	}
	if len(many) > 0 {
		return strconv.Itoa(n) + " " + many[0]
	}
	return strconv.Itoa(n) + " " + one + "s"
}

func bootstrapCommand() *cobra.Command {
	var f adminFlags
	var parent, org, owner string
	c := leaf("bootstrap --parent <name> --org <slug> --owner <email>",
		"Create a parent organization, its first org and primary owner; print an API key and a sign-in link", &f,
		func(cmd *cobra.Command) error {
			var res BootstrapResult
			return f.run(cmd, http.MethodPost, "/ssogate/bootstrap", nil, BootstrapRequest{Parent: parent, Org: org, Owner: owner}, &res, func(out io.Writer) {
				fmt.Fprintf(out, "parent org: %s\norg:        %s\nAPI key:    %s   (shown once; use as Authorization: Bearer)\n", res.ParentID, res.OrgID, res.APIKey)
				if res.LoginURL != "" {
					fmt.Fprintf(out, "sign-in:    %s   (single use, 7 days)\n", res.LoginURL)
				}
			})
		})
	c.Flags().StringVar(&parent, "parent", "", "name of the new parent organization")
	c.Flags().StringVar(&org, "org", "", "slug of its first org")
	c.Flags().StringVar(&owner, "owner", "", "email of the primary owner")
	return c
}

func parentCommand() *cobra.Command {
	var f adminFlags
	list := leaf("list", "List parent organizations: ID, name, number of orgs, owners", &f, func(cmd *cobra.Command) error {
		var res ParentList
		return f.run(cmd, http.MethodGet, "/ssogate/parents", nil, nil, &res, func(out io.Writer) {
			rows := make([][]string, 0, len(res.Parents))
			for _, p := range res.Parents {
				rows = append(rows, []string{p.ID, p.Name, strconv.Itoa(p.Orgs), orDash(strings.Join(p.Owners, ", "))})
			}
			table(out, "ID\tNAME\tORGS\tOWNERS", rows)
		})
	})
	return group("parent", "Parent organizations (SSO settings, domains and API keys shared by their orgs)", list)
}

func orgCommand() *cobra.Command {
	var f adminFlags
	var in OrgCreateRequest
	create := leaf("create --parent <id-or-name> --name <name> [--slug <slug>]", "Create an org in a parent organization", &f,
		func(cmd *cobra.Command) error {
			var res OrgCreateResult
			return f.run(cmd, http.MethodPost, "/ssogate/orgs", nil, in, &res, func(out io.Writer) {
				fmt.Fprintf(out, "org:        %s\nslug:       %s\nname:       %s\nparent org: %s (%s)\n", res.ID, res.Slug, res.Name, res.ParentID, res.ParentName)
			})
		})
	create.Flags().StringVar(&in.Parent, "parent", "", "the parent organization's ID or name")
	create.Flags().StringVar(&in.Name, "name", "", "the org's display name")
	create.Flags().StringVar(&in.Slug, "slug", "", "the org's slug (default: made from the name)")
	return group("org", "Orgs (workspaces) of parent organizations", required(create, "parent", "name"))
}

func apiKeyCommand() *cobra.Command {
	var cf, lf, rf adminFlags
	var in, rev APIKeyRequest
	create := leaf("create --parent <id-or-name> --name <name>", "Create an admin API key for a parent organization (printed once)", &cf,
		func(cmd *cobra.Command) error {
			var res APIKeyResult
			return cf.run(cmd, http.MethodPost, "/ssogate/api-keys", nil, in, &res, func(out io.Writer) {
				fmt.Fprintf(out, "API key:    %s   (shown once; use as Authorization: Bearer)\nid:         %s\nname:       %s\nparent org: %s\n", res.APIKey, res.ID, res.Name, res.ParentID)
			})
		})
	create.Flags().StringVar(&in.Parent, "parent", "", "the parent organization's ID or name")
	create.Flags().StringVar(&in.Name, "name", "", "a name for the key (who or what uses it)")

	var parent string
	list := leaf("list --parent <id-or-name>", "List a parent organization's API keys (never the keys themselves)", &lf,
		func(cmd *cobra.Command) error {
			var res APIKeyList
			return lf.run(cmd, http.MethodGet, "/ssogate/api-keys", url.Values{"parent": {parent}}, nil, &res, func(out io.Writer) {
				rows := make([][]string, 0, len(res.Keys))
				for _, k := range res.Keys {
					used := "never"
					if !k.LastUsedAt.IsZero() {
						used = k.LastUsedAt.UTC().Format(time.RFC3339)
					}
					rows = append(rows, []string{k.ID, k.Name, k.CreatedAt.UTC().Format(time.RFC3339), used})
				}
				table(out, "ID\tNAME\tCREATED\tLAST USED", rows)
			})
		})
	list.Flags().StringVar(&parent, "parent", "", "the parent organization's ID or name")

	revoke := leaf("revoke --parent <id-or-name> --id <key id>", "Revoke an API key at once", &rf,
		func(cmd *cobra.Command) error {
			var res APIKeyRevoked
			return rf.run(cmd, http.MethodPost, "/ssogate/api-keys/revoke", nil, rev, &res, func(out io.Writer) {
				fmt.Fprintf(out, "revoked API key %s (%s) of parent org %s\n", res.ID, orDash(res.Name), res.ParentID)
			})
		})
	revoke.Flags().StringVar(&rev.Parent, "parent", "", "the parent organization's ID or name")
	revoke.Flags().StringVar(&rev.ID, "id", "", "the key's ID (see api-key list)")
	return group("api-key", "Admin API keys (each acts as an owner of its parent organization)",
		required(create, "parent", "name"), required(list, "parent"), required(revoke, "parent", "id"))
}

func domainCommand() *cobra.Command {
	var f adminFlags
	var parent string
	list := leaf("list [--parent <id-or-name>]", "List domain claims with their verification status", &f, func(cmd *cobra.Command) error {
		q := url.Values{}
		if parent != "" {
			q.Set("parent", parent)
		}
		var res DomainList
		return f.run(cmd, http.MethodGet, "/ssogate/domains", q, nil, &res, func(out io.Writer) {
			rows := make([][]string, 0, len(res.Domains))
			for _, d := range res.Domains {
				since := d.CreatedAt
				if !d.VerifiedAt.IsZero() {
					since = d.VerifiedAt
				}
				rows = append(rows, []string{d.Name, string(d.Status), since.UTC().Format(time.RFC3339), d.ParentID, d.ParentName, orDash(d.LastError)})
			}
			table(out, "DOMAIN\tSTATUS\tSINCE\tPARENT ID\tPARENT\tLAST ERROR", rows)
		})
	})
	list.Flags().StringVar(&parent, "parent", "", "only this parent organization's (ID or name)")
	return group("domain", "Email domains claimed by parent organizations", list)
}

func sessionCommand() *cobra.Command {
	var f adminFlags
	var in SessionRevokeRequest
	revoke := leaf("revoke --user <email-or-id> | --parent <id-or-name>", "End sessions at once, on every instance: one user's, or every member's of a parent organization", &f,
		func(cmd *cobra.Command) error {
			if (strings.TrimSpace(in.User) == "") == (strings.TrimSpace(in.Parent) == "") {
				return errors.New("give exactly one of --user (an email or user ID) or --parent (a parent organization's ID or name)")
			}
			var res SessionRevokeResult
			return f.run(cmd, http.MethodPost, "/ssogate/sessions/revoke", nil, in, &res, func(out io.Writer) {
				who := "members of parent org " + res.ParentID
				if res.UserID != "" {
					who = res.Email + " (" + res.UserID + ")"
				}
				fmt.Fprintf(out, "ended %s of %s\n", plural(res.Revoked, "session"), who)
			})
		})
	revoke.Flags().StringVar(&in.User, "user", "", "the user's email or ID")
	revoke.Flags().StringVar(&in.Parent, "parent", "", "a parent organization's ID or name: every member of its orgs")
	return group("session", "Signed-in sessions", revoke)
}

func mergeCommand() *cobra.Command {
	var f adminFlags
	var in MergeProposeRequest
	propose := leaf("propose --from <parent> --into <parent> [--by <email>]",
		"Propose that the orgs of one parent organization join another (both sides' owners must approve)", &f,
		func(cmd *cobra.Command) error {
			var res MergeProposeResult
			return f.run(cmd, http.MethodPost, "/ssogate/merge-proposals", nil, in, &res, func(out io.Writer) {
				p := res.Proposal
				fmt.Fprintf(out, "merge proposal: %s (%s)\nincoming:       %s (%s), %s\nsurviving:      %s (%s)\nproposed by:    %s\nexpires:        %s\nmailed:         %s of both sides; each side approves in its console or API\n",
					p.ID, p.Status, p.IncomingParent.Name, p.IncomingParent.ID, plural(len(p.Orgs), "org"), p.SurvivingParent.Name, p.SurvivingParent.ID,
					p.ProposedBy, p.ExpiresAt.UTC().Format(time.RFC3339), plural(res.Notified, "owner or admin", "owners and admins"))
			})
		})
	propose.Flags().StringVar(&in.From, "from", "", "the incoming parent organization (ID or name): its orgs move")
	propose.Flags().StringVar(&in.Into, "into", "", "the surviving parent organization (ID or name)")
	propose.Flags().StringVar(&in.By, "by", "", "who proposes, for the mails and the audit log (default: operator)")
	return group("merge", "Merges of parent organizations", required(propose, "from", "into"))
}

// adminRequest calls Caddy's admin endpoint and answers the body of a
// successful response.
func adminRequest(address, method, path string, body []byte) ([]byte, error) {
	if !strings.Contains(address, "://") {
		address = "http://" + address
	}
	client := &http.Client{Timeout: 30 * time.Second}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(address, "/")+path, rd)
	if err != nil {
		return nil, fmt.Errorf("bad --address %q: %w", address, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// Caddy's admin endpoint checks Origin against the address it listens on.
	req.Header.Set("Origin", strings.TrimSuffix(address, "/"))
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the ssogate server's admin endpoint at %s (is it running? see --address): %w", address, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", address, err)
	}
	if resp.StatusCode == http.StatusNotFound && !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		return nil, fmt.Errorf("%s: %s has no ssogate admin routes (is this server built with ssogate?)", resp.Status, address)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(raw)))
	}
	return raw, nil
}

package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite golden files")

func adapt(t *testing.T, caddyfile string) ([]byte, error) {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	return out, err
}

// Caddyfile.example adapts to the JSON in testdata (a golden file, like
// Caddy's caddyfile_adapt tests). Run with -update to rewrite it.
func TestCaddyfileExampleGolden(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := adapt(t, string(src))
	if err != nil {
		t.Fatalf("Caddyfile.example does not adapt: %v", err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out, "", "\t"); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "Caddyfile.example.json")
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update)", err)
	}
	if !bytes.Equal(bytes.TrimSpace(pretty.Bytes()), bytes.TrimSpace(want)) {
		t.Fatalf("adapted JSON differs from %s:\n%s", golden, pretty.String())
	}
	// The parts that matter, spelled out.
	for _, s := range []string{`"handler": "ssogate"`, `"site_url": "https://app.example.com"`, `"backend": "bolt"`, `"session_ttl": 43200000000000`} {
		if !strings.Contains(pretty.String(), s) {
			t.Errorf("adapted config lacks %s", s)
		}
	}
	// ssogate runs before reverse_proxy without an order line.
	if i, j := strings.Index(pretty.String(), `"handler": "ssogate"`), strings.Index(pretty.String(), `"handler": "reverse_proxy"`); i < 0 || j < 0 || i > j {
		t.Fatal("ssogate is not ordered before reverse_proxy")
	}
}

func TestCaddyfileErrors(t *testing.T) {
	site := func(body string) string { return ":8080 {\n" + body + "\n}\n" }
	global := func(body string) string {
		return "{\n\tssogate {\n" + body + "\n\t}\n}\n" + site("ssogate https://app.example.com")
	}
	tests := []struct {
		name, caddyfile, want string
	}{
		{"unknown global option", global("colour blue"), `unknown ssogate option "colour"`},
		{"unknown storage", global("storage postgres"), `unknown storage backend "postgres"`},
		{"redis without url", global("storage redis"), "storage redis needs a URL"},
		{"redis not a url", global("storage redis localhost"), "is not a URL"},
		{"key_prefix on bolt", global("storage bolt {\nkey_prefix x\n}"), "applies to redis storage only"},
		{"short secret", global("secret tooshort"), "use at least 32 random bytes"},
		{"empty env secret", global("secret {env.SSOGATE_TEST_UNSET_VAR}"), "empty after expanding placeholders"},
		{"bad duration", global("session {\nttl forever\n}"), `bad duration "forever"`},
		{"idle longer than ttl", global("session {\nttl 1h\nidle 2h\n}"), "longer than ttl"},
		{"unknown session option", global("session {\nabsolute 1h\n}"), `unknown session option "absolute"`},
		{"bad group prefix", global("group_prefix \"a b\""), "must not contain spaces"},
		{"bad metadata_refresh", global("metadata_refresh soon"), `bad duration "soon"`},
		{"metadata_refresh extra args", global("metadata_refresh 1h 2h"), "wrong argument count"},
		{"metadata_refresh no args", global("metadata_refresh"), "wrong argument count"},
		{"mail not a url", global("mail mailserver:25"), "is not an smtp:// or smtps:// URL"},
		{"mail without from", global("mail smtp://u:p@smtp.example.com:587"), "mail needs a sender"},
		{"unknown mail option", global("mail outbox {\nsender x\n}"), `unknown mail option "sender"`},
		{"social without name", global("social"), "social needs a provider name"},
		{"social bad option", global("social google {\nscope email\n}"), `unknown social option "scope"`},
		{"no site_url", site("ssogate {\norg acme\n}"), "site_url is required"},
		{"site_url with path", site("ssogate https://app.example.com/app"), "must be an origin"},
		{"site_url ftp", site("ssogate ftp://app.example.com"), "must be an origin"},
		{"site_url credentials", site("ssogate https://u:p@app.example.com"), "must be an origin"},
		{"bad base_path", site("ssogate {\nsite_url https://a.example.com\nbase_path sso/\n}"), "base_path"},
		{"upper-case org", site("ssogate {\nsite_url https://a.example.com\norg Acme\n}"), "slugs are lower-case"},
		{"unknown handler option", site("ssogate {\nsite_url https://a.example.com\ncolour blue\n}"), `unknown ssogate handler option "colour"`},
		{"extra args", site("ssogate https://a.example.com extra"), "wrong argument count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adapt(t, tt.caddyfile)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "Caddyfile:") {
				t.Errorf("error %q does not name the line", err)
			}
		})
	}
}

func TestCaddyfileMetadataRefresh(t *testing.T) {
	for in, want := range map[string]string{"off": `"metadata_refresh":-1`, "6h": `"metadata_refresh":21600000000000`} {
		out, err := adapt(t, "{\n\tssogate {\n\t\tmetadata_refresh "+in+"\n\t}\n}\n:8080 {\n\tssogate https://app.example.com\n}\n")
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("metadata_refresh %s: %v, want %s in %s", in, err, want, out)
		}
	}
}

// FuzzCaddyfile feeds arbitrary option lines to both ssogate blocks: the
// adapter must answer with a config or an error, never panic.
func FuzzCaddyfile(f *testing.F) {
	f.Add("storage redis redis://127.0.0.1:6379/0", "org acme")
	f.Add("session {\nttl 1h\nidle 2h\n}", "base_path /sso")
	f.Add("mail smtp://u:p@h:587 {\nfrom \"A <a@b.c>\"\n}", "site_url https://x.example.com")
	f.Add("social google {\nclient_id a\nclient_secret b\n}", "}")
	f.Add("{", "\"")
	f.Fuzz(func(t *testing.T, global, site string) {
		cf := "{\n\tssogate {\n" + global + "\n\t}\n}\n:8080 {\n\tssogate https://app.example.com {\n" + site + "\n\t}\n\trespond ok\n}\n"
		_, _ = adapt(t, cf)
	})
}

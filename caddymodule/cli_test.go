package caddymodule_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/internal/gatewaytest"
)

func TestCLIListModulesAndValidate(t *testing.T) {
	t.Parallel()
	out, code := gatewaytest.RunCLI(t, "..", "list-modules")
	if code != 0 || !strings.Contains(out, "\nssogate\n") || !strings.Contains(out, "http.handlers.ssogate") {
		t.Fatalf("list-modules: exit %d\n%s", code, out)
	}
	out, code = gatewaytest.RunCLI(t, "..", "validate", "--config", "Caddyfile.example")
	if code != 0 || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("validate Caddyfile.example: exit %d\n%s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(bad, []byte(":8080 {\n\tssogate {\n\t\tsite_url https://app.example.com\n\t\tcolour blue\n\t}\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = gatewaytest.RunCLI(t, "..", "validate", "--config", bad, "--adapter", "caddyfile")
	if code == 0 || !strings.Contains(out, `unknown ssogate handler option \"colour\"`) || !strings.Contains(out, "Caddyfile:4") {
		t.Fatalf("validate a broken Caddyfile: exit %d\n%s", code, out)
	}
}

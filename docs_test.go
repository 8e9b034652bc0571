package ssogate_test

// The docs test: every fenced block of README.md is either checked for
// real or named here with what covers it, so the manual cannot drift from
// the product.
//
//   - ```caddyfile blocks are validated by the binary's `validate` command
//     (the modules are provisioned). A block that is only the global option
//     (`ssogate {`) is wrapped in a global options block plus a site.
//   - ```sh blocks are split into commands; each command must match a rule
//     in shRules: run here for real, or covered by a named test or CI
//     script whose existence (and the command's shape) is checked here.
//   - ```json, ```nginx, ```text and untagged blocks are not commands.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/gatewaytest"
)

func TestMain(m *testing.M) {
	gatewaytest.RunIfChild()
	os.Exit(m.Run())
}

// fence is one fenced block of README.md.
type fence struct {
	line int    // line of the opening fence, 1-based
	lang string // the language tag ("" when untagged)
	body string // the lines between the fences, without their indentation
}

var (
	fenceOpen = regexp.MustCompile("^(\\s*)```([A-Za-z0-9_+-]*)\\s*$")
	// The tags README may use: caddyfile and sh blocks are checked; the
	// others (and untagged blocks) are not commands.
	knownLangs = []string{"caddyfile", "sh", "json", "nginx", "text", ""}
)

func readmeFences(t *testing.T) []fence {
	t.Helper()
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []fence
	var cur *fence
	var indent string
	for i, l := range strings.Split(string(raw), "\n") {
		if cur == nil {
			if m := fenceOpen.FindStringSubmatch(l); m != nil {
				cur, indent = &fence{line: i + 1, lang: m[2]}, m[1]
			}
			continue
		}
		if strings.TrimSpace(l) == "```" {
			out = append(out, *cur)
			cur = nil
			continue
		}
		cur.body += strings.TrimPrefix(l, indent) + "\n"
	}
	if cur != nil {
		t.Fatalf("README.md:%d: the ``` fence is never closed", cur.line)
	}
	if len(out) == 0 {
		t.Fatal("README.md has no fenced blocks: the parser is broken")
	}
	return out
}

// TestREADME checks every fenced block of README.md (see the top of this file).
func TestREADME(t *testing.T) {
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// The go tool needs the real HOME (build and module caches); everything
	// else runs with HOME and XDG folders in a temp dir.
	goEnv := os.Environ()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "cache"))

	fences := readmeFences(t)
	d := &docs{t: t, root: root, goEnv: goEnv, vars: map[string]string{}}
	d.startBuild() // in the background while the Caddyfiles validate

	t.Run("fences", func(t *testing.T) {
		for _, f := range fences {
			if !slices.Contains(knownLangs, f.lang) {
				t.Errorf("README.md:%d: unknown fence tag ```%s: use caddyfile or sh (checked by this test), or json, nginx, text", f.line, f.lang)
			}
		}
	})

	t.Run("caddyfile", func(t *testing.T) {
		n := 0
		for _, f := range fences {
			if f.lang != "caddyfile" {
				continue
			}
			n++
			t.Run(fmt.Sprintf("README.md:%d", f.line), func(t *testing.T) { validateCaddyfile(t, f) })
		}
		if n == 0 {
			t.Fatal("README.md has no ```caddyfile blocks: the parser is broken")
		}
	})

	t.Run("sh", func(t *testing.T) {
		d.outer = t // the gateway lives as long as this subtest
		var cmds []shCommand
		for _, f := range fences {
			if f.lang == "sh" {
				cmds = append(cmds, splitCommands(f)...)
			}
		}
		if len(cmds) == 0 {
			t.Fatal("README.md has no ```sh commands: the parser is broken")
		}
		// Rules that need a running gateway (curl) run last, so that the
		// README's own `ssogate admin bootstrap` has printed the key first.
		slices.SortStableFunc(cmds, func(a, b shCommand) int { return ruleFor(a).phase - ruleFor(b).phase })
		for _, c := range cmds {
			t.Run(fmt.Sprintf("README.md:%d %s", c.line, short(c.text)), func(t *testing.T) {
				r := ruleFor(c)
				if r.check == nil {
					t.Fatalf("README.md:%d: no rule covers this command:\n\t%s\n"+
						"Cover it in docs_test.go's shRules: run it for real there, or name the test "+
						"(func TestX in some package) or make target that runs it.", c.line, c.text)
				}
				t.Logf("covered: %s", r.how)
				r.check(d, t, c)
			})
		}
	})
}

// ---- Caddyfile blocks ----

var (
	envPlaceholder = regexp.MustCompile(`\{env\.([A-Za-z_][A-Za-z0-9_]*)\}`)
	synopsisArg    = regexp.MustCompile(`<[A-Za-z_][A-Za-z0-9_-]*>`)
)

func validateCaddyfile(t *testing.T, f fence) {
	body := f.body
	if strings.Contains(body, "…") {
		t.Fatalf("README.md:%d: a ```caddyfile block holds “…”: put a valid value there (e.g. {env.NAME}: the test sets every {env.*})", f.line)
	}
	if m := synopsisArg.FindString(body); m != "" {
		t.Fatalf("README.md:%d: %s looks like a syntax synopsis, not a Caddyfile: tag the block ```text", f.line, m)
	}
	first := ""
	for _, l := range strings.Split(body, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			first = l
			break
		}
	}
	config := body
	switch {
	case first == "{":
		// A whole Caddyfile.
	case first == "ssogate {":
		// The global option alone: wrap it, and add a site using the directive.
		config = "{\n"
		for _, l := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
			config += "\t" + l + "\n"
		}
		config += "}\n\napp.example.com {\n\tssogate https://app.example.com\n\treverse_proxy 127.0.0.1:3000\n}\n"
	default:
		t.Fatalf("README.md:%d: a ```caddyfile block must be a whole Caddyfile (starting with the global options `{`) "+
			"or the global option `ssogate {`; it starts with %q (a synopsis should be ```text)", f.line, first)
	}
	for _, m := range envPlaceholder.FindAllStringSubmatch(config, -1) {
		// Long enough for `secret`, which wants 32 bytes.
		t.Setenv(m[1], "docs-test-"+strings.ToLower(m[1])+"-0123456789abcdef0123456789abcdef")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := gatewaytest.RunCLI(t, dir, "validate", "--config", path, "--adapter", "caddyfile")
	if code != 0 || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("README.md:%d: the ```caddyfile block does not validate (exit %d).\nValidated:\n%s\nOutput:\n%s", f.line, code, config, out)
	}
}

// ---- sh blocks: commands ----

type shCommand struct {
	line    int    // README line the command starts on
	text    string // the command, continuations joined, comment dropped
	comment string // its trailing comment, if any
}

// splitCommands splits an sh block into commands: backslash continuations
// joined, comments and blank lines dropped.
func splitCommands(f fence) []shCommand {
	var out []shCommand
	lines := strings.Split(strings.TrimRight(f.body, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		start := f.line + 1 + i
		l := strings.TrimSpace(lines[i])
		for strings.HasSuffix(l, `\`) && i+1 < len(lines) {
			i++
			l = strings.TrimSpace(strings.TrimSuffix(l, `\`)) + " " + strings.TrimSpace(lines[i])
		}
		text, comment := stripComment(l)
		if text == "" {
			continue
		}
		out = append(out, shCommand{line: start, text: text, comment: comment})
	}
	return out
}

// stripComment drops a # comment (at the start of a word, outside quotes).
func stripComment(l string) (text, comment string) {
	var quote rune
	for i, r := range l {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return strings.TrimSpace(l[:i]), strings.TrimSpace(l[i+1:])
		}
	}
	return strings.TrimSpace(l), ""
}

func short(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}

// shRule covers README commands matching re: check runs the command for
// real, or checks that what covers it exists and fits the command.
type shRule struct {
	re    *regexp.Regexp
	how   string // what covers the command, for the log
	phase int    // commands run in phase order, then README order
	check func(d *docs, t *testing.T, c shCommand)
}

var shRules = []shRule{
	{
		re:    regexp.MustCompile(`^` + regexp.QuoteMeta(readmeBuild) + `$`),
		how:   "run here: built into a temp dir (the binary the ./ssogate commands use)",
		check: func(d *docs, t *testing.T, c shCommand) { d.binary(t) },
	},
	{
		re:    regexp.MustCompile(`^\./ssogate (list-modules|validate)\b`),
		how:   "run here with bash, on the binary the README's go build made",
		check: runBuilt,
	},
	{
		re:    regexp.MustCompile(`^xcaddy build `),
		how:   "compared with what `make xcaddy-cmd` prints (go run ./scripts/xcaddycmd xcaddy.json); xcaddy itself needs the network",
		check: checkXcaddy,
	},
	{
		re:  regexp.MustCompile(`^make test$`),
		how: "CI: .ci/run runs `make test` (this test is one of the tests it runs)",
		check: func(d *docs, t *testing.T, c shCommand) {
			d.fileHas(t, ".ci/run", `(?m)^make test$`)
			d.fileHas(t, "Makefile", `(?m)^test:`)
			d.fileHas(t, "Makefile", `(?m)^PKGS\s*:=\s*\./\.\.\.\s*$`) // so it runs this package's tests
			d.fileHas(t, "Makefile", `(?m)^\t\$\(GO\) test .*\$\(PKGS\)`)
		},
	},
	{
		re:  regexp.MustCompile(`^go run \./cmd/ssogate demo(\s|$)`),
		how: "TestWalkthrough in ./demo starts the demo (bolt, and --redis) and walks its printed walkthrough",
		check: func(d *docs, t *testing.T, c shCommand) {
			d.testExists(t, "demo", "TestWalkthrough")
			if strings.Contains(c.text, "--redis") && !d.testsHave("demo", `redistest\.Start`) {
				t.Fatal("TestWalkthrough should walk the demo on Redis too (no redistest.Start in ./demo's tests)")
			}
			d.shape(t, true, strings.TrimPrefix(c.text, "go run ./cmd/ssogate "))
		},
	},
	{
		re:    regexp.MustCompile(`^ssogate admin \S`),
		how:   "run here with bash against a running gateway (--address pointed at it; [optional] parts included)",
		check: runAdmin,
	},
	{
		re:    regexp.MustCompile(`^curl .*https://app\.example\.com/`),
		phase: 1,
		how:   "run here with bash against a running gateway (https://app.example.com is the gateway; $KEY etc. real keys)",
		check: runCurl,
	},
}

func ruleFor(c shCommand) shRule {
	for _, r := range shRules {
		if r.re.MatchString(c.text) {
			return r
		}
	}
	return shRule{phase: 2}
}

// docs is the state the commands share: the built binary, a gateway, the
// shell variables the README's commands use.
type docs struct {
	t     *testing.T // TestREADME
	outer *testing.T // its "sh" subtest
	root  string
	goEnv []string

	buildDone chan struct{}
	bin       string
	buildOut  string
	buildErr  error

	gw   *gatewaytest.Gateway
	vars map[string]string
	// placeholder marks variables that name no real object: a handler's
	// not_found answer is then proof enough that the route exists.
	placeholder map[string]bool
}

// readmeBuild is the README's build command; it runs here as it is, with
// the output in a temp dir. (make test has compiled the packages already,
// for go vet, so this is mostly the link.)
const readmeBuild = "go build -o ssogate ./cmd/ssogate"

func (d *docs) startBuild() {
	d.bin = filepath.Join(d.t.TempDir(), "ssogate")
	d.buildDone = make(chan struct{})
	go func() {
		defer close(d.buildDone)
		cmd := exec.Command("go", "build", "-o", d.bin, "./cmd/ssogate")
		cmd.Dir, cmd.Env = d.root, d.goEnv
		out, err := cmd.CombinedOutput()
		d.buildOut, d.buildErr = string(out), err
	}()
	d.t.Cleanup(func() { <-d.buildDone })
}

// binary waits for the build and returns the binary's path.
func (d *docs) binary(t *testing.T) string {
	t.Helper()
	<-d.buildDone
	if d.buildErr != nil {
		t.Fatalf("%s (output in a temp dir): %v\n%s", readmeBuild, d.buildErr, d.buildOut)
	}
	return d.bin
}

// bash runs a command line with bash -euo pipefail in the repository
// root, with the README's variables set; it returns stdout, stderr and
// the exit code.
func (d *docs) bash(t *testing.T, line string) (string, string, int) {
	t.Helper()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", line)
	cmd.Dir = d.root
	cmd.Env = os.Environ()
	for k, v := range d.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting bash: %v", err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return stdout.String(), stderr.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatalf("bash: %v", err)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("timed out after 60s: %s", line)
	}
	return stdout.String(), stderr.String(), 0
}

func (d *docs) fileHas(t *testing.T, path, pattern string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.root, path))
	if err != nil {
		t.Fatalf("the command's coverage needs %s: %v", path, err)
	}
	if !regexp.MustCompile(pattern).Match(b) {
		t.Fatalf("the command's coverage needs %s to match %s; it does not", path, pattern)
	}
}

// testExists checks that a package directory has `func name(` in a
// _test.go file.
func (d *docs) testExists(t *testing.T, dir, name string) {
	t.Helper()
	if !d.testsHave(dir, `(?m)^func `+regexp.QuoteMeta(name)+`\(`) {
		t.Fatalf("the README command is covered by %s in ./%s, but no ./%s/*_test.go has func %s(: fix the table in docs_test.go", name, dir, dir, name)
	}
}

// testsHave reports whether a _test.go file of a package directory
// matches pattern.
func (d *docs) testsHave(dir, pattern string) bool {
	re := regexp.MustCompile(pattern)
	files, _ := filepath.Glob(filepath.Join(d.root, dir, "*_test.go"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && re.Match(b) {
			return true
		}
	}
	return false
}

var flagRE = regexp.MustCompile(`^\[?(--[a-z][a-z0-9-]*)`)

// shape checks an ssogate command line (without the leading `ssogate`):
// its subcommands exist and its --flags are theirs, by --help. With
// built, it asks the built binary; else this test binary as the CLI.
func (d *docs) shape(t *testing.T, built bool, args string) {
	t.Helper()
	var path, flags []string
	for _, w := range strings.Fields(args) {
		if m := flagRE.FindStringSubmatch(w); m != nil {
			flags = append(flags, m[1])
		} else if len(flags) == 0 && !strings.ContainsAny(w, `"'[]<>=:/`) {
			path = append(path, w)
		}
	}
	help := append(slices.Clone(path), "--help")
	var out string
	var code int
	if built {
		var stderr string
		out, stderr, code = d.bash(t, shellJoin(append([]string{d.binary(t)}, help...)))
		out += stderr
	} else {
		out, code = gatewaytest.RunCLI(t, d.root, help...)
	}
	usage := regexp.MustCompile(`(?m)^\s+\S+ ` + regexp.QuoteMeta(strings.Join(path, " ")) + `( |$)`)
	if code != 0 || !usage.MatchString(out) {
		t.Fatalf("`ssogate %s` is no command of the binary (its --help: exit %d):\n%s", strings.Join(path, " "), code, out)
	}
	for _, f := range flags {
		if !regexp.MustCompile(`(?m)^\s+(-\w, )?` + regexp.QuoteMeta(f) + `\b`).MatchString(out) {
			t.Errorf("`ssogate %s` has no flag %s (its --help):\n%s", strings.Join(path, " "), f, out)
		}
	}
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// ---- the rules' checks ----

// runBuilt runs a ./ssogate command on the built binary.
func runBuilt(d *docs, t *testing.T, c shCommand) {
	line := shellJoin([]string{d.binary(t)}) + strings.TrimPrefix(c.text, "./ssogate")
	out, stderr, code := d.bash(t, line)
	if code != 0 {
		t.Fatalf("README.md:%d: %s: exit %d\n%s%s", c.line, c.text, code, out, stderr)
	}
	switch {
	case strings.Contains(c.text, "list-modules"):
		// The comment says what it prints: `# ssogate, http.handlers.ssogate`.
		lines := strings.Split(out, "\n")
		want := strings.Split(c.comment, ",")
		if c.comment == "" {
			t.Fatalf("README.md:%d: say in a comment which modules it lists", c.line)
		}
		for _, m := range want {
			if !slices.Contains(lines, strings.TrimSpace(m)) {
				t.Errorf("README.md:%d: %s does not list %q (README comment: %s):\n%s", c.line, c.text, strings.TrimSpace(m), c.comment, out)
			}
		}
	case strings.Contains(c.text, "validate"):
		if !strings.Contains(out+stderr, "Valid configuration") {
			t.Fatalf("README.md:%d: %s did not say \"Valid configuration\":\n%s%s", c.line, c.text, out, stderr)
		}
	}
}

// localVersion is the placeholder version that xcaddy's `=.` replacement
// satisfies when building from a local checkout.
const localVersion = "v0.0.0-00010101000000-000000000000"

func checkXcaddy(d *docs, t *testing.T, c shCommand) {
	cmd := exec.Command("go", "run", "./scripts/xcaddycmd", "xcaddy.json")
	cmd.Dir, cmd.Env = d.root, d.goEnv
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run ./scripts/xcaddycmd xcaddy.json (make xcaddy-cmd): %v\n%s", err, out)
	}
	// The published form is what xcaddy.json says; from a local checkout
	// the same plugin is pinned to a placeholder version replaced by ".".
	got := strings.TrimSpace(string(out))
	if local := got + "@" + localVersion + "=."; c.text != got && c.text != local {
		t.Fatalf("README.md:%d: the xcaddy command is neither what `make xcaddy-cmd` prints from xcaddy.json nor its local-checkout form:\n README:      %s\n xcaddy.json: %s\n local:       %s\nMake them agree.", c.line, c.text, got, local)
	}
}

// gateway starts the gateway the admin and curl commands talk to (once),
// with the parent org "Acme EU" (org acme-eu) whose key is $ACME_EU_KEY,
// for the README's merge example.
func (d *docs) gateway(t *testing.T) *gatewaytest.Gateway {
	t.Helper()
	if d.gw != nil {
		return d.gw
	}
	d.gw = gatewaytest.Start(d.outer, gatewaytest.Global()+
		"http://127.0.0.1:{PORT} {\n\tssogate http://127.0.0.1:{PORT}\n\trespond \"the app\"\n}\n", gatewaytest.Options{})
	d.vars["ACME_EU_KEY"] = d.bootstrap(t, "Acme EU", "acme-eu", "owner@acme-eu.com")
	return d.gw
}

func (d *docs) bootstrap(t *testing.T, parent, org, owner string) string {
	t.Helper()
	out, code := gatewaytest.RunCLI(t, d.root, "admin", "bootstrap", "--parent", parent, "--org", org, "--owner", owner, "--address", d.gw.Admin, "--json")
	key := apiKeyOf(out)
	if code != 0 || key == "" {
		t.Fatalf("ssogate admin bootstrap --parent %q: exit %d\n%s", parent, code, out)
	}
	return key
}

var humanKey = regexp.MustCompile(`(?m)^API key:\s+(\S+)`)

// apiKeyOf finds the API key in bootstrap's output (--json or not).
func apiKeyOf(out string) string {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var res struct {
			APIKey string `json:"api_key"`
		}
		if json.Unmarshal(sc.Bytes(), &res) == nil && res.APIKey != "" {
			return res.APIKey
		}
	}
	if m := humanKey.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

var addressFlag = regexp.MustCompile(`--address[ =]\S+`)

// runAdmin runs an `ssogate admin …` command for real against the gateway.
// Its key ($KEY, and $ACME_KEY: the README's parent org is Acme) is what
// the curl commands use.
func runAdmin(d *docs, t *testing.T, c shCommand) {
	d.shape(t, false, strings.TrimPrefix(c.text, "ssogate "))
	if synopsisArg.MatchString(c.text) {
		t.Fatalf("README.md:%d: %s has <placeholders>: give real values so it can be run", c.line, c.text)
	}
	g := d.gateway(t)
	line := strings.NewReplacer("[", "", "]", "").Replace(c.text) // include the [optional] parts
	if addressFlag.MatchString(line) {
		line = addressFlag.ReplaceAllString(line, "--address "+g.Admin)
	} else {
		line += " --address " + g.Admin
	}
	line = shellJoin([]string{d.binary(t)}) + strings.TrimPrefix(line, "ssogate")
	out, stderr, code := d.bash(t, line)
	if code != 0 {
		t.Fatalf("README.md:%d: %s: exit %d\n%s%s", c.line, c.text, code, out, stderr)
	}
	if strings.HasPrefix(c.text, "ssogate admin bootstrap ") {
		key := apiKeyOf(out)
		if key == "" {
			t.Fatalf("README.md:%d: %s printed no API key:\n%s", c.line, c.text, out)
		}
		for _, v := range []string{"KEY", "ACME_KEY"} {
			if d.vars[v] == "" {
				d.vars[v] = key
			}
		}
	}
}

var (
	shellVar = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
	// Variables the README's curl commands may use: set by the gateway
	// set-up or the README's bootstrap; ID by a command that creates
	// something (else a placeholder).
	curlVars = []string{"KEY", "ACME_KEY", "ACME_EU_KEY", "ID"}
)

// runCurl runs a curl command against the gateway and checks that its
// endpoint exists and answers it.
func runCurl(d *docs, t *testing.T, c shCommand) {
	g := d.gateway(t)
	if d.vars["KEY"] == "" {
		// The README has no `ssogate admin bootstrap` (that runs first).
		k := d.bootstrap(t, "Acme", "acme", "alice@acme.com")
		d.vars["KEY"], d.vars["ACME_KEY"] = k, k
	}
	if d.placeholder == nil {
		d.placeholder = map[string]bool{}
	}
	usesPlaceholder := false
	for _, m := range shellVar.FindAllStringSubmatch(c.text, -1) {
		v := m[1]
		if !slices.Contains(curlVars, v) {
			t.Fatalf("README.md:%d: $%s is not a variable the docs test knows (%v): add it to curlVars and set it in docs_test.go", c.line, v, curlVars)
		}
		if d.vars[v] == "" {
			d.vars[v], d.placeholder[v] = "docs-test-no-such-"+strings.ToLower(v), true
		}
		usesPlaceholder = usesPlaceholder || d.placeholder[v]
	}
	line := strings.ReplaceAll(c.text, "https://app.example.com", g.URL) + ` -w '\n%{http_code}'`
	out, stderr, code := d.bash(t, line)
	if code != 0 {
		t.Fatalf("README.md:%d: %s: curl exit %d\n%s", c.line, c.text, code, stderr)
	}
	i := strings.LastIndex(out, "\n")
	body, status := out[:max(i, 0)], out[i+1:]
	t.Logf("HTTP %s %s", status, short(body))
	var answer struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Proposal *struct {
			ID string `json:"id"`
		} `json:"proposal"`
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		t.Fatalf("README.md:%d: %s: HTTP %s, not JSON (%v):\n%s", c.line, c.text, status, err, body)
	}
	switch {
	case status == "405":
		t.Fatalf("README.md:%d: %s: 405: the endpoint has no such method:\n%s", c.line, c.text, body)
	case answer.Error != nil && answer.Error.Message == "no such ssogate endpoint":
		t.Fatalf("README.md:%d: %s: no such endpoint:\n%s", c.line, c.text, body)
	case strings.HasPrefix(status, "2"):
	case usesPlaceholder && status == "404" && answer.Error != nil && answer.Error.Code == "not_found":
		t.Logf("the endpoint exists (its handler answered not_found for a placeholder ID)")
	default:
		t.Fatalf("README.md:%d: %s: HTTP %s:\n%s", c.line, c.text, status, body)
	}
	// Remember what the command created, for $ID in later commands.
	id := answer.ID
	if answer.Proposal != nil {
		id = answer.Proposal.ID
	}
	if id != "" {
		d.vars["ID"], d.placeholder["ID"] = id, false
	}
}

// Package gatewaytest runs real Caddy processes with ssogate for
// end-to-end tests: the test binary re-executes itself as the ssogate
// binary (see RunIfChild), so no separate build is needed and each test
// gets its own process, ports and data directory.
//
// It also registers a test-only handler, `ssogate_testlogin`, that signs a
// user in directly (creating the org and membership it names). It exists
// only in test binaries: nothing outside _test files imports this package.
package gatewaytest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// The standard modules and ssogate's, as in cmd/ssogate.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/ssogate/ssogate/caddymodule"
)

const childEnv = "SSOGATE_GATEWAYTEST_CHILD"

// argSep separates the child's arguments in the environment (arguments
// may hold spaces).
const argSep = "\x1f"

// RunIfChild turns the current test binary into the ssogate binary when it
// was started by Start. Call it first in TestMain.
func RunIfChild() {
	if os.Getenv(childEnv) != "1" {
		return
	}
	os.Args = append([]string{"ssogate"}, strings.Split(os.Getenv(childEnv+"_ARGS"), argSep)...)
	caddycmd.Main()
	os.Exit(0)
}

// FreePort returns a currently free loopback TCP port.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Gateway is one running Caddy process.
type Gateway struct {
	t        testing.TB
	cmd      *exec.Cmd
	URL      string // http://127.0.0.1:<port>
	Port     int
	Admin    string // 127.0.0.1:<admin port>
	DataDir  string
	output   *lockedBuffer
	stopOnce sync.Once
}

// Options tune Start.
type Options struct {
	// DataDir to reuse (e.g. to restart on the same bolt file); default a temp dir.
	DataDir string
	// Port to listen on; default a free one.
	Port int
	// Env is extra environment for the child.
	Env []string
}

// Start runs Caddy with a Caddyfile. In the Caddyfile, {PORT} and
// {ADMIN} are replaced with the HTTP port and admin address; the global
// options block must start with `{` on the first line and should include
// `admin {ADMIN}` and `http_port {PORT}` (Global adds them for you).
func Start(t testing.TB, caddyfile string, opts Options) *Gateway {
	t.Helper()
	g := &Gateway{t: t, Port: opts.Port, DataDir: opts.DataDir, output: &lockedBuffer{}}
	if g.Port == 0 {
		g.Port = FreePort(t)
	}
	if g.DataDir == "" {
		g.DataDir = t.TempDir()
	}
	g.Admin = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	g.URL = fmt.Sprintf("http://127.0.0.1:%d", g.Port)
	cf := strings.NewReplacer("{PORT}", fmt.Sprint(g.Port), "{ADMIN}", g.Admin).Replace(caddyfile)
	path := filepath.Join(g.DataDir, fmt.Sprintf("Caddyfile.%d", g.Port))
	if err := os.WriteFile(path, []byte(cf), 0o600); err != nil {
		t.Fatalf("writing Caddyfile: %v", err)
	}
	g.cmd = exec.Command(os.Args[0])
	g.cmd.Env = append(os.Environ(), childEnv+"=1",
		childEnv+"_ARGS="+strings.Join([]string{"run", "--config", path, "--adapter", "caddyfile"}, argSep),
		"XDG_DATA_HOME="+g.DataDir, "XDG_CONFIG_HOME="+g.DataDir, "HOME="+g.DataDir)
	g.cmd.Env = append(g.cmd.Env, opts.Env...)
	g.cmd.Stdout, g.cmd.Stderr = g.output, g.output
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("starting caddy: %v", err)
	}
	t.Cleanup(g.Stop)
	g.waitReady()
	return g
}

// Global returns a global options block for Start with the admin
// endpoint, port and no automatic HTTPS, plus the extra lines given.
func Global(lines ...string) string {
	return "{\n\tadmin {ADMIN}\n\thttp_port {PORT}\n\tauto_https off\n\tpersist_config off\n" +
		"\t" + strings.Join(lines, "\n\t") + "\n}\n"
}

func (g *Gateway) waitReady() {
	g.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if g.cmd.ProcessState != nil {
			break
		}
		resp, err := http.Get("http://" + g.Admin + "/config/")
		if err == nil {
			resp.Body.Close()
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", g.Port), time.Second)
			if err == nil {
				c.Close()
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.t.Fatalf("caddy did not become ready; output:\n%s", g.output.String())
}

// Stop ends the process (idempotent) and waits for it.
func (g *Gateway) Stop() {
	g.stopOnce.Do(func() {
		if g.cmd.Process == nil {
			return
		}
		_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = g.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if tt, ok := g.t.(*testing.T); ok && tt.Failed() {
			g.t.Logf("caddy output (%s):\n%s", g.URL, g.output.String())
		}
	})
}

// Output returns what the process logged so far.
func (g *Gateway) Output() string { return g.output.String() }

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// NoRedirectClient returns a client that does not follow redirects.
func NoRedirectClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// ReadBody reads and closes a response body.
func ReadBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

// RunCLI runs the ssogate CLI (this test binary as the child) with args
// and returns its combined output and exit code.
func RunCLI(t testing.TB, dir string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), childEnv+"=1", childEnv+"_ARGS="+strings.Join(args, argSep),
		"XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		t.Fatalf("running the CLI: %v", err)
	}
	return string(out), 0
}

// Logged waits up to 5 s for the process to have logged s (its output is
// copied asynchronously, so a line written just before a response may
// arrive just after it).
func (g *Gateway) Logged(s string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if strings.Contains(g.output.String(), s) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SettledOutput returns the output once it has stopped growing for 200 ms
// (at most 5 s), for tests that count log lines.
func (g *Gateway) SettledOutput() string {
	deadline := time.Now().Add(5 * time.Second)
	last := g.output.String()
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		now := g.output.String()
		if now == last {
			return now
		}
		last = now
	}
	return last
}

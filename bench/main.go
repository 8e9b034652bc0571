// Command bench is `make bench`: end-to-end throughput of ssogate against a
// bare Caddy reverse_proxy, measured side by side in one run.
//
// It starts a trivial upstream, then three Caddy processes from the ssogate
// binary: a bare reverse_proxy, ssogate on bolt and ssogate on Redis, each
// with a signed-in session prepared in its store. It loads each with wrk in
// turn, several rounds alternating, servers pinned to one core and wrk to
// the other, and reports requests/s and p50/p99 latency as ratios to bare
// Caddy. Results are also written as JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

type target struct {
	Name   string
	URL    string
	Cookie string
	proc   *exec.Cmd
}

type roundResult struct {
	RPS float64 `json:"rps"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

type summary struct {
	Name     string        `json:"name"`
	Rounds   []roundResult `json:"rounds"`
	RPS      float64       `json:"median_rps"`
	P50      float64       `json:"median_p50_ms"`
	P99      float64       `json:"median_p99_ms"`
	RPSRatio float64       `json:"rps_ratio_to_bare"`
	P99Ratio float64       `json:"p99_ratio_to_bare"`
	RSSKiB   int64         `json:"rss_kib_after_load"`
}

func main() {
	bin := flag.String("bin", "bin/ssogate", "the ssogate binary")
	rounds := flag.Int("rounds", 3, "rounds per target")
	dur := flag.Duration("duration", 5*time.Second, "wrk duration per round")
	conns := flag.Int("connections", 32, "wrk connections")
	out := flag.String("out", "bench/results", "directory for the JSON results")
	flag.Parse()
	log.SetFlags(0)
	pinSelf()
	if err := run(*bin, *rounds, *dur, *conns, *out); err != nil {
		log.Fatalf("bench: %v", err)
	}
}

func run(bin string, rounds int, dur time.Duration, conns int, outDir string) error {
	for _, tool := range []string{"wrk", "redis-server", bin} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (make bench installs wrk and redis-server and builds %s): %w", tool, bin, err)
		}
	}
	work, err := os.MkdirTemp("", "ssogate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	serverCPU, wrkCPU := pinning()

	up, err := startUpstream()
	if err != nil {
		return err
	}
	defer up.Close()
	redisURL, stopRedis, err := startRedis(work, serverCPU)
	if err != nil {
		return err
	}
	defer stopRedis()

	ctx := context.Background()
	secret := "bench-secret-" + strings.Repeat("x", 40)
	boltPath := filepath.Join(work, "bolt", "ssogate.db")
	boltCookie, err := prepareSession(ctx, "bolt", boltPath, secret)
	if err != nil {
		return fmt.Errorf("preparing bolt session: %w", err)
	}
	redisCookie, err := prepareSession(ctx, "redis", redisURL, secret)
	if err != nil {
		return fmt.Errorf("preparing redis session: %w", err)
	}
	targets := []*target{
		{Name: "caddy reverse_proxy (bare)"},
		{Name: "ssogate (bolt)", Cookie: boltCookie},
		{Name: "ssogate (redis)", Cookie: redisCookie},
	}
	storages := []string{"", "storage bolt " + boltPath, "storage redis " + redisURL}
	for i, t := range targets {
		if err := startCaddy(t, bin, work, i, storages[i], secret, up.Addr().String(), serverCPU); err != nil {
			return err
		}
		defer stopProc(t.proc)
	}
	// Every target must answer 200 with its cookie before we measure.
	for _, t := range targets {
		if err := check(t); err != nil {
			return err
		}
		if _, err := runWrk(t, time.Second, conns, wrkCPU); err != nil { // warm-up
			return err
		}
	}
	results := make([][]roundResult, len(targets))
	for r := 0; r < rounds; r++ {
		for i, t := range targets {
			res, err := runWrk(t, dur, conns, wrkCPU)
			if err != nil {
				return err
			}
			results[i] = append(results[i], res)
			log.Printf("round %d  %-28s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms", r+1, t.Name, res.RPS, res.P50, res.P99)
		}
	}
	sums := summarise(targets, results)
	report(sums, serverCPU, wrkCPU)
	return writeJSON(outDir, sums, rounds, dur, conns)
}

// pinning puts the servers on CPU 0 and wrk on CPU 1 when taskset and two
// CPUs are there, so the client does not steal the servers' time.
func pinning() (server, client string) {
	// Once re-run under taskset, NumCPU sees only CPU 0: the parent's
	// decision comes through the environment.
	if v := os.Getenv("SSOGATE_BENCH_PINNED"); v != "" {
		if s, c, ok := strings.Cut(v, ","); ok {
			return s, c
		}
		return "", ""
	}
	if runtime.NumCPU() < 2 {
		return "", ""
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return "", ""
	}
	return "0", "1"
}

// pinSelf re-runs this program on CPU 0 (with the servers), so the
// upstream it serves does not compete with wrk on CPU 1.
func pinSelf() {
	if os.Getenv("SSOGATE_BENCH_PINNED") != "" {
		return
	}
	if cpu, _ := pinning(); cpu != "" {
		exe, err := os.Executable()
		if err != nil {
			return
		}
		cmd := pinned(cpu, exe, os.Args[1:]...)
		_, client := pinning()
		cmd.Env = append(os.Environ(), "SSOGATE_BENCH_PINNED="+cpu+","+client)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				os.Exit(ee.ExitCode())
			}
			log.Fatalf("bench: %v", err)
		}
		os.Exit(0)
	}
}

func pinned(cpu, name string, args ...string) *exec.Cmd {
	if cpu == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("taskset", append([]string{"-c", cpu, name}, args...)...)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startUpstream() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})}
	go func() { _ = srv.Serve(l) }()
	return l, nil
}

func startRedis(work, cpu string) (string, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	cmd := pinned(cpu, "redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", work)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting redis-server: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitTCP(addr, 10*time.Second); err != nil {
		stopProc(cmd)
		return "", nil, fmt.Errorf("redis-server: %w", err)
	}
	return "redis://" + addr + "/0", func() { stopProc(cmd) }, nil
}

func startCaddy(t *target, bin, work string, i int, storage, secret, upstream, cpu string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	admin, err := freePort()
	if err != nil {
		return err
	}
	t.URL = fmt.Sprintf("http://127.0.0.1:%d/", port)
	site := fmt.Sprintf("http://127.0.0.1:%d {\n", port)
	global := fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\tauto_https off\n\tpersist_config off\n\tlog {\n\t\tlevel ERROR\n\t}\n", admin)
	if storage != "" {
		global += fmt.Sprintf("\tssogate {\n\t\t%s\n\t\tsecret %s\n\t}\n", storage, secret)
		site += fmt.Sprintf("\tssogate http://127.0.0.1:%d\n", port)
	}
	global += "}\n"
	site += fmt.Sprintf("\treverse_proxy %s\n}\n", upstream)
	dir := filepath.Join(work, fmt.Sprint("caddy", i))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cf := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cf, []byte(global+site), 0o600); err != nil {
		return err
	}
	cmd := pinned(cpu, bin, "run", "--config", cf, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "GOMAXPROCS=1")
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", t.Name, err)
	}
	t.proc = cmd
	if err := waitTCP(fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		return fmt.Errorf("%s did not start: %w\n%s", t.Name, err, log)
	}
	return nil
}

func check(t *target) error {
	req, _ := http.NewRequest("GET", t.URL, nil)
	if t.Cookie != "" {
		req.Header.Set("Cookie", "ssogate_session="+t.Cookie)
	}
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", t.Name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s answered %d, want 200 (is the session valid?)", t.Name, resp.StatusCode)
	}
	return nil
}

func waitTCP(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listening on %s after %v", addr, within)
}

func stopProc(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func summarise(targets []*target, results [][]roundResult) []summary {
	sums := make([]summary, len(targets))
	for i, t := range targets {
		var rps, p50, p99 []float64
		for _, r := range results[i] {
			rps, p50, p99 = append(rps, r.RPS), append(p50, r.P50), append(p99, r.P99)
		}
		sums[i] = summary{Name: t.Name, Rounds: results[i], RPS: median(rps), P50: median(p50), P99: median(p99), RSSKiB: rssKiB(t.proc)}
	}
	for i := range sums {
		sums[i].RPSRatio = sums[i].RPS / sums[0].RPS
		sums[i].P99Ratio = sums[i].P99 / sums[0].P99
	}
	return sums
}

func report(sums []summary, serverCPU, wrkCPU string) {
	pin := "not pinned"
	if serverCPU != "" {
		pin = fmt.Sprintf("servers on CPU %s, wrk on CPU %s", serverCPU, wrkCPU)
	}
	fmt.Printf("\nssogate end-to-end benchmark (%s; medians of rounds)\n\n", pin)
	fmt.Printf("| %-28s | %10s | %8s | %8s | %13s | %13s | %9s |\n", "target", "req/s", "p50 ms", "p99 ms", "req/s vs bare", "p99 vs bare", "RSS MiB")
	fmt.Printf("|%s|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 30), strings.Repeat("-", 12), strings.Repeat("-", 10), strings.Repeat("-", 10), strings.Repeat("-", 15), strings.Repeat("-", 15), strings.Repeat("-", 11))
	for _, s := range sums {
		fmt.Printf("| %-28s | %10.0f | %8.2f | %8.2f | %12.2fx | %12.2fx | %9.1f |\n", s.Name, s.RPS, s.P50, s.P99, s.RPSRatio, s.P99Ratio, float64(s.RSSKiB)/1024)
	}
}

func writeJSON(dir string, sums []summary, rounds int, dur time.Duration, conns int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	server, client := pinning()
	doc := map[string]any{"time": time.Now().UTC().Format(time.RFC3339), "server_cpu": server, "wrk_cpu": client, "rounds": rounds,
		"duration": dur.String(), "connections": conns, "targets": sums}
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "latest.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return err
	}
	fmt.Printf("\nresults: %s\n", path)
	return nil
}

// rssKiB reads the resident set size of the server process (the Caddy
// child of taskset, which execs it in place).
func rssKiB(cmd *exec.Cmd) int64 {
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kib int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")), "%d", &kib)
			return kib
		}
	}
	return 0
}

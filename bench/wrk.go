package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	rpsRe = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	pctRe = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
	errRe = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

func runWrk(t *target, dur time.Duration, conns int, cpu string) (roundResult, error) {
	args := []string{"-t1", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(dur.Seconds())), "--latency"}
	if t.Cookie != "" {
		args = append(args, "-H", "Cookie: ssogate_session="+t.Cookie)
	}
	args = append(args, t.URL)
	out, err := pinned(cpu, "wrk", args...).CombinedOutput()
	if err != nil {
		return roundResult{}, fmt.Errorf("wrk against %s: %w\n%s", t.Name, err, out)
	}
	return parseWrk(string(out))
}

func parseWrk(out string) (roundResult, error) {
	if m := errRe.FindStringSubmatch(out); m != nil {
		return roundResult{}, fmt.Errorf("wrk saw %s non-2xx responses: the session was refused\n%s", m[1], out)
	}
	m := rpsRe.FindStringSubmatch(out)
	if m == nil {
		return roundResult{}, fmt.Errorf("no Requests/sec in wrk output:\n%s", out)
	}
	var r roundResult
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	for _, p := range pctRe.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		switch p[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if p[1] == "50" {
			r.P50 = v
		} else {
			r.P99 = v
		}
	}
	if r.P50 == 0 || r.P99 == 0 || !strings.Contains(out, "Latency Distribution") {
		return roundResult{}, fmt.Errorf("no latency distribution in wrk output:\n%s", out)
	}
	return r, nil
}

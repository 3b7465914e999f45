package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run reports.
type wrkResult struct {
	Requests     int64   `json:"requests"`
	RPS          float64 `json:"rps"`
	P50          float64 `json:"p50_ms"`
	P99          float64 `json:"p99_ms"`
	Non2xx3xx    int64   `json:"non_2xx_3xx"`
	SocketErrors int64   `json:"socket_errors"`
}

// runWrk runs wrk against url and parses its report.
func runWrk(ctx context.Context, wrk, url string, threads, conns int, d time.Duration, headers []string) (wrkResult, string, error) {
	args := []string{
		"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", max(1, int(d.Round(time.Second)/time.Second))),
		"--timeout", "5s", "--latency",
	}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	args = append(args, url)
	out, err := exec.CommandContext(ctx, wrk, args...).CombinedOutput()
	if err != nil {
		return wrkResult{}, string(out), fmt.Errorf("wrk %s: %w\n%s", url, err, out)
	}
	r, err := parseWrk(string(out))
	return r, string(out), err
}

// parseWrk reads the report of wrk 4.x run with --latency.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveReq, haveRPS, haveP50, haveP99 bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 2 && f[0] == "50%":
			v, err := parseWrkDuration(f[1])
			if err != nil {
				return r, err
			}
			r.P50, haveP50 = v, true
		case len(f) >= 2 && f[0] == "99%":
			v, err := parseWrkDuration(f[1])
			if err != nil {
				return r, err
			}
			r.P99, haveP99 = v, true
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk requests %q: %w", f[0], err)
			}
			r.Requests, haveReq = n, true
		case len(f) >= 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("wrk rps %q: %w", f[1], err)
			}
			r.RPS, haveRPS = v, true
		case len(f) >= 4 && f[0] == "Non-2xx":
			n, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk non-2xx %q: %w", f[len(f)-1], err)
			}
			r.Non2xx3xx = n
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 2; i+1 < len(f); i += 2 {
				n, err := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				if err != nil {
					return r, fmt.Errorf("wrk socket errors %q: %w", sc.Text(), err)
				}
				r.SocketErrors += n
			}
		}
	}
	if !haveReq || !haveRPS || !haveP50 || !haveP99 {
		return r, fmt.Errorf("wrk report incomplete (requests %v, rps %v, p50 %v, p99 %v):\n%s", haveReq, haveRPS, haveP50, haveP99, out)
	}
	return r, nil
}

// parseWrkDuration converts wrk's "812.00us", "1.23ms", "2.00s", "1.00m" to
// milliseconds.
func parseWrkDuration(s string) (float64, error) {
	units := []struct {
		suffix string
		ms     float64
	}{{"us", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("wrk duration %q: %w", s, err)
			}
			return v * u.ms, nil
		}
	}
	return 0, fmt.Errorf("wrk duration %q: unknown unit", s)
}

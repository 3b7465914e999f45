package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// row is the median over rounds of one target, path and connection count,
// with ratios to the bare proxy and nginx of the same path and count.
type row struct {
	Target       string  `json:"target"`
	Path         string  `json:"path"`
	Conns        int     `json:"conns"`
	URLPath      string  `json:"url_path"`
	RPS          float64 `json:"rps"`
	P50          float64 `json:"p50_ms"`
	P99          float64 `json:"p99_ms"`
	CPUPerReq    float64 `json:"cpu_us_per_req"`
	StubCPUPer   float64 `json:"stub_cpu_us_per_req"`
	PeakRSS      int64   `json:"peak_rss_bytes"`
	Requests     int64   `json:"requests"` // median per measured run
	NewStubConns int64   `json:"new_stub_conns"`
	Errors       int64   `json:"errors"` // non-2xx/3xx and socket errors, all rounds

	RPSvsBare   float64 `json:"rps_vs_bare,omitempty"`
	CPUvsBare   float64 `json:"cpu_vs_bare,omitempty"`
	P99vsBare   float64 `json:"p99_vs_bare,omitempty"`
	RPSvsNginx  float64 `json:"rps_vs_nginx,omitempty"`
	CPUvsNginx  float64 `json:"cpu_vs_nginx,omitempty"`
	P99vsNginx  float64 `json:"p99_vs_nginx,omitempty"`
	hasProcess  bool
	sampleCount int
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarize folds samples into rows in the order path, conns, target.
func summarize(samples []sample, c config) []row {
	var rows []row
	for _, p := range c.paths {
		for _, n := range c.conns {
			var group []row
			for _, t := range c.targets {
				var rps, p50, p99, cpu, stubCPU, reqs, conns []float64
				r := row{Target: t, Path: p, Conns: n}
				for _, s := range samples {
					if s.Target != t || s.Path != p || s.Conns != n {
						continue
					}
					rps = append(rps, s.RPS)
					p50 = append(p50, s.P50)
					p99 = append(p99, s.P99)
					cpu = append(cpu, s.CPUPerReq)
					stubCPU = append(stubCPU, s.StubCPUPer)
					reqs = append(reqs, float64(s.Requests))
					conns = append(conns, float64(s.NewStubConns))
					r.URLPath = s.URLPath
					r.PeakRSS = max(r.PeakRSS, s.PeakRSS)
					r.Errors += s.Non2xx3xx + s.SocketErrors
					r.hasProcess = r.hasProcess || s.PeakRSS > 0
					r.sampleCount++
				}
				if r.sampleCount == 0 {
					continue
				}
				r.RPS, r.P50, r.P99 = median(rps), median(p50), median(p99)
				r.CPUPerReq, r.StubCPUPer = median(cpu), median(stubCPU)
				r.Requests, r.NewStubConns = int64(median(reqs)), int64(median(conns))
				group = append(group, r)
			}
			ref := func(name string) *row {
				for i := range group {
					if group[i].Target == name {
						return &group[i]
					}
				}
				return nil
			}
			bare, nginx := ref("bare"), ref("nginx")
			for i := range group {
				g := &group[i]
				if bare != nil {
					g.RPSvsBare, g.P99vsBare = ratio(g.RPS, bare.RPS), ratio(g.P99, bare.P99)
					if g.hasProcess {
						g.CPUvsBare = ratio(g.CPUPerReq, bare.CPUPerReq)
					}
				}
				if nginx != nil {
					g.RPSvsNginx, g.P99vsNginx = ratio(g.RPS, nginx.RPS), ratio(g.P99, nginx.P99)
					if g.hasProcess {
						g.CPUvsNginx = ratio(g.CPUPerReq, nginx.CPUPerReq)
					}
				}
			}
			rows = append(rows, group...)
		}
	}
	return rows
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(a/b*100) / 100
}

func fmtRatio(v float64) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", v)
}

func printTable(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tconns\ttarget\trps\tp50 ms\tp99 ms\tCPU µs/req\tstub µs/req\tpeak RSS MB\tstub conns/reqs\terrors\trps/bare\tCPU/bare\tp99/bare\trps/nginx\tCPU/nginx\t")
	for _, r := range rows {
		cpu, rss := "—", "—"
		if r.hasProcess {
			cpu = fmt.Sprintf("%.1f", r.CPUPerReq)
			rss = fmt.Sprintf("%.1f", float64(r.PeakRSS)/(1<<20))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f\t%.2f\t%.2f\t%s\t%.1f\t%s\t%d/%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n",
			r.Path, r.Conns, r.Target, r.RPS, r.P50, r.P99, cpu, r.StubCPUPer, rss,
			r.NewStubConns, r.Requests, r.Errors,
			fmtRatio(r.RPSvsBare), fmtRatio(r.CPUvsBare), fmtRatio(r.P99vsBare),
			fmtRatio(r.RPSvsNginx), fmtRatio(r.CPUvsNginx))
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "medians over rounds; CPU = utime+stime of the proxy's processes; stub conns = new upstream connections during warm-up + run; peak RSS = VmHWM")
}

// verdictGoals are the issues' targets at the highest connection count,
// as ratios to the bare proxy: rps at least minRPS, CPU per request at most
// maxCPU (0: no goal), p99 no worse, peak RSS at most 64 MB.
var verdictGoals = []struct {
	target, title  string
	minRPS, maxCPU float64
}{
	{"gateway", "gateway vs bare proxy, targets of issue 3", 1.2, 0.8},
	{"gateway-session", "signed-in gateway (session cache hit) vs bare proxy, targets of issue 5", 1.1, 0},
	{"gateway-limits", "signed-in gateway with rate limits on vs bare proxy, issue 14", 1.1, 0},
	{"gateway-jwt", "Bearer-JWT gateway (verify + epoch check, cache hit) vs bare proxy, targets of issue 6", 1.0, 0},
	{"gateway-guest", "guest-token gateway (verify + revocation check, cache hit) vs bare proxy, targets of issue 7", 1.0, 0},
	{"gateway-token", "access-token gateway (checksum, record and scope check, cache hit, minted JWT cached) vs bare proxy, targets of issue 8", 0.9, 0},
}

// printVerdict checks the gateway targets against verdictGoals.
func printVerdict(w io.Writer, rows []row) {
	top := 0
	for _, r := range rows {
		top = max(top, r.Conns)
	}
	check := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "MISS"
	}
	for _, g := range verdictGoals {
		var lines []string
		for _, r := range rows {
			if r.Conns != top || r.RPSvsBare == 0 || r.Target != g.target {
				continue
			}
			cpu := fmt.Sprintf("CPU %.2f×", r.CPUvsBare)
			if g.maxCPU > 0 {
				cpu = fmt.Sprintf("CPU %.2f× (≤%.2f %s)", r.CPUvsBare, g.maxCPU, check(r.CPUvsBare > 0 && r.CPUvsBare <= g.maxCPU))
			}
			path := r.Path
			if r.URLPath != "" && r.URLPath != pathsByName[r.Path] {
				path += " (" + r.URLPath + ")"
			}
			lines = append(lines, fmt.Sprintf("  %s c=%d: rps %.2f× (≥%.2f %s), %s, p99 %.2f× (≤1.00 %s), RSS %.1f MB (≤64 %s), errors %d",
				path, r.Conns, r.RPSvsBare, g.minRPS, check(r.RPSvsBare >= g.minRPS), cpu,
				r.P99vsBare, check(r.P99vsBare <= 1.0),
				float64(r.PeakRSS)/(1<<20), check(r.PeakRSS <= 64<<20), r.Errors))
		}
		if len(lines) > 0 {
			fmt.Fprintln(w, "\n"+g.title+":")
			fmt.Fprintln(w, strings.Join(lines, "\n"))
		}
	}
}

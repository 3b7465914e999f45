package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// procStat is the part of /proc/<pid>/stat the bench uses.
type procStat struct {
	ppid         int
	utime, stime int64 // clock ticks
}

// parseProcStat parses /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted after its last ')'.
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("stat: no ')' in %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("stat: %d fields after comm", len(f))
	}
	var s procStat
	var err error
	if s.ppid, err = strconv.Atoi(f[1]); err != nil {
		return s, fmt.Errorf("stat ppid: %w", err)
	}
	if s.utime, err = strconv.ParseInt(f[11], 10, 64); err != nil {
		return s, fmt.Errorf("stat utime: %w", err)
	}
	if s.stime, err = strconv.ParseInt(f[12], 10, 64); err != nil {
		return s, fmt.Errorf("stat stime: %w", err)
	}
	return s, nil
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

// tree returns pid and all its descendants (nginx's master and workers).
func tree(pid int) []int {
	children := map[int][]int{}
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		s, err := parseProcStat(b)
		if err != nil {
			continue
		}
		child, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		children[s.ppid] = append(children[s.ppid], child)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// cpuTicks sums utime+stime over the processes.
func cpuTicks(pids []int) (int64, error) {
	var sum int64
	for _, pid := range pids {
		s, err := readProcStat(pid)
		if err != nil {
			return 0, fmt.Errorf("cpu of %d: %w", pid, err)
		}
		sum += s.utime + s.stime
	}
	return sum, nil
}

// parseVmHWM returns the VmHWM line of /proc/<pid>/status in bytes.
func parseVmHWM(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", f[1], err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in status")
}

// peakRSS sums VmHWM over the processes: the peak of each, an upper bound of
// the peak of the group.
func peakRSS(pids []int) (int64, error) {
	var sum int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, err
		}
		v, err := parseVmHWM(b)
		if err != nil {
			return 0, fmt.Errorf("rss of %d: %w", pid, err)
		}
		sum += v
	}
	return sum, nil
}

// clockTicks returns USER_HZ, the unit of utime and stime.
func clockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && v > 0 {
			return v
		}
	}
	return 100 // the value on every Linux architecture Go supports
}

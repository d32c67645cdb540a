package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// profiler records a system-wide CPU profile with perf while a phase runs
// (every process on the machine: the services, Kafka, Cassandra and the
// load generator compete for the same cores), and summarises it: the CPU
// share of each process and thread group, and the hottest functions of
// each Sextant process. Nil when profiling is off.
type profiler struct {
	name  string
	data  string
	cmd   *exec.Cmd
	dir   string
	t0    time.Time
	t1    time.Time
	once  sync.Once
	timer *time.Timer
}

// profiled are the phases profiled; a profile covers at most
// maxProfile from the phase's start.
var profiled = []string{"ingest_grpc_stream_b500", "ingest_grpc_stream_b25", "ingest_rest_single", "freshness_20k", "query_at_", "query_direct_at_", "replay_v2"}

const maxProfile = 30 * time.Second

func (h *harness) startProfile(b *backend, name string) *profiler {
	if !h.profile || !slices.ContainsFunc(profiled, func(p string) bool { return strings.HasPrefix(name, p) }) {
		return nil
	}
	dir := filepath.Join(h.outDir, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil
	}
	data := filepath.Join(dir, b.name+"-"+name+".perf.data")
	cmd := exec.Command("perf", "record", "-a", "-g", "-F", "199", "-o", data)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		h.logf("profile %s: %v", name, err)
		return nil
	}
	p := &profiler{name: b.name + "-" + name, data: data, cmd: cmd, dir: dir, t0: time.Now()}
	p.timer = time.AfterFunc(maxProfile, p.end)
	return p
}

// end stops the recording (once).
func (p *profiler) end() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		_ = p.cmd.Wait()
		p.t1 = time.Now()
	})
}

// stop ends the recording; the summary is written by summarize, after the
// phase (perf report is CPU-heavy: it must not count in the phase).
func (p *profiler) stop(b *backend) {
	if p == nil {
		return
	}
	p.timer.Stop()
	p.end()
	b.profiles = append(b.profiles, p)
}

// summarizeProfiles writes the summaries of the backend's profiles.
func summarizeProfiles(b *backend) {
	for _, p := range b.profiles {
		p.summarize(b)
	}
	b.profiles = nil
}

// summarize writes <name>.txt next to the data.
func (p *profiler) summarize(b *backend) {
	secs := p.t1.Sub(p.t0).Seconds()
	var out strings.Builder
	fmt.Fprintf(&out, "CPU profile of phase %s (%s backend), perf record -a -g -F 199 for %.1fs on %d cores\n\n", p.name, b.name, secs, runtimeCores())
	names := make([]string, 0, len(b.pids))
	for n := range b.pids {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&out, "pid %d = %s\n", b.pids[n], n)
	}
	out.WriteString("\n== share of all samples by process\n")
	out.WriteString(processShares(p.data, b.pids))
	for _, n := range names {
		pid := strconv.Itoa(b.pids[n])
		switch n {
		case "kafka", "cassandra", "redis":
			fmt.Fprintf(&out, "\n== %s (pid %s): thread names\n", n, pid)
			out.WriteString(perfReport(p.data, "--pid", pid, "--sort", "comm", "--percent-limit", "1"))
		default:
			fmt.Fprintf(&out, "\n== %s (pid %s): hottest functions (self)\n", n, pid)
			out.WriteString(perfReport(p.data, "--pid", pid, "--sort", "sym", "--percent-limit", "0.25"))
			fmt.Fprintf(&out, "\n== %s (pid %s): hottest call paths (children)\n", n, pid)
			out.WriteString(perfReportChildren(p.data, pid))
		}
	}
	_ = os.WriteFile(filepath.Join(p.dir, p.name+".txt"), []byte(out.String()), 0o644)
}

func runtimeCores() int {
	n := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(b), "\nprocessor") + 1
	}
	return n
}

// perfReport runs perf report --stdio --no-children with args and keeps
// the table lines.
func perfReport(data string, args ...string) string {
	all := append([]string{"report", "-i", data, "--stdio", "--no-children", "-g", "none"}, args...)
	b, err := exec.Command("perf", all...).Output()
	if err != nil && len(b) == 0 {
		return "(perf report failed: " + err.Error() + ")\n"
	}
	var keep []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		keep = append(keep, line)
		if len(keep) == 40 {
			break
		}
	}
	return strings.Join(keep, "\n") + "\n"
}

// perfReportChildren lists the functions with the most samples in their
// call trees (inclusive), which attributes runtime and syscall time to the
// code that caused it.
func perfReportChildren(data, pid string) string {
	b, err := exec.Command("perf", "report", "-i", data, "--stdio", "--children", "-g", "none", "--pid", pid,
		"--sort", "sym", "--percent-limit", "4").Output()
	if err != nil && len(b) == 0 {
		return "(perf report failed: " + err.Error() + ")\n"
	}
	var keep []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") || wrapperFrame(line) {
			continue
		}
		keep = append(keep, line)
		if len(keep) == 45 {
			break
		}
	}
	return strings.Join(keep, "\n") + "\n"
}

// wrapperFrame reports the frames every request passes through (HTTP/2
// server, Connect, interceptors), which say nothing about the cost.
func wrapperFrame(line string) bool {
	for _, w := range []string{"net/http.", "connectrpc.com/connect.", "runtime.goexit", "sextant/pkg/server.",
		"sextant/gen/", "sextant/pkg/auth.", "sextant/pkg/rpcerror.", "golang.org/x/net/http2.", "google.golang.org/grpc.(*Server)",
		"google.golang.org/grpc.(*serverStream)", "internal/transport.(*http2Server)"} {
		if strings.Contains(line, w) {
			return true
		}
	}
	return false
}

// processShares sums perf's per-thread shares by process: threads are
// mapped to their process through /proc/<tid>/status, processes named by
// the harness's names or their command line.
func processShares(data string, pids map[string]int) string {
	b, err := exec.Command("perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none", "--sort", "pid").Output()
	if err != nil && len(b) == 0 {
		return "(perf report failed: " + err.Error() + ")\n"
	}
	byName := map[int]string{}
	for n, pid := range pids {
		byName[pid] = n
	}
	shares := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(line, "#") || !strings.HasSuffix(f[0], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		tidS, comm, _ := strings.Cut(f[len(f)-1], ":")
		tid, _ := strconv.Atoi(tidS)
		shares[processName(tid, comm, byName)] += pct
	}
	names := make([]string, 0, len(shares))
	for n := range shares {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		switch {
		case shares[a] > shares[b]:
			return -1
		case shares[a] < shares[b]:
			return 1
		}
		return strings.Compare(a, b)
	})
	var out strings.Builder
	for _, n := range names {
		if shares[n] >= 0.3 {
			fmt.Fprintf(&out, "%7.2f%%  %s\n", shares[n], n)
		}
	}
	return out.String()
}

func processName(tid int, comm string, byName map[int]string) string {
	if tid == 0 {
		return "idle"
	}
	tgid := tid
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
				tgid, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
	} else {
		if comm == "sextant" {
			return "sextant loadgen (exited before the report)"
		}
		return "exited thread (" + comm + ")"
	}
	if n, ok := byName[tgid]; ok {
		return n
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", tgid)); err == nil {
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		switch {
		case len(args) > 1 && strings.HasSuffix(args[0], "sextant"):
			return "sextant " + args[1]
		case len(args) > 0 && strings.HasSuffix(args[0], "harness"):
			return "harness (raw Kafka clients, report queries)"
		case len(args) > 0:
			return filepath.Base(args[0])
		}
	}
	return comm
}

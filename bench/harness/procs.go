package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// service is a running `sextant serve`.
type service struct {
	name   string
	addr   string
	cmd    *exec.Cmd
	done   chan error
	exited chan struct{}
	log    string
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startService runs `sextant serve args…` on a free address and waits
// until it is ready.
func (h *harness) startService(ctx context.Context, name string, env []string, args ...string) (*service, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return h.startServiceAt(ctx, name, addr, env, args...)
}

// startServiceAt runs `sextant serve args…` on addr and waits until it is
// ready.
func (h *harness) startServiceAt(ctx context.Context, name, addr string, env []string, args ...string) (*service, error) {
	logPath := filepath.Join(h.outDir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args = append([]string{"serve", "--addr", addr, "--demo=false", "--log-level", "warn"}, args...)
	if h.plan.StartVersion != "" {
		args = append(args, "--start-version", h.plan.StartVersion)
	}
	cmd := exec.Command(h.bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	s := &service{name: name, addr: addr, cmd: cmd, done: make(chan error, 1), exited: make(chan struct{}), log: logPath}
	go func() {
		err := cmd.Wait()
		lf.Close()
		s.done <- err
		close(s.exited)
	}()
	h.services = append(h.services, s)
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("%s exited at start: %v (see %s)", name, <-s.done, logPath)
		case <-ctx.Done():
			return nil, ctx.Err()
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				h.logf("started %s on %s (pid %d)", name, addr, cmd.Process.Pid)
				return s, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("%s not ready in 90s (see %s)", name, logPath)
}

func (s *service) pid() int { return s.cmd.Process.Pid }

// stop ends the service with SIGTERM (SIGKILL after 30 s).
func (s *service) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// runSextant runs a sextant command and returns its stdout.
func (h *harness) runSextant(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("sextant %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// --- /proc ---

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

type procStat struct {
	cpu    float64 // user + system CPU seconds
	rssKiB int64
	hwmKiB int64 // peak RSS
	ok     bool
}

func readProc(pid int) procStat {
	var st procStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return st
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return st
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	stt, _ := strconv.ParseFloat(f[12], 64)
	st.cpu = (ut + stt) / clockTicks
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := sc.Text()
		for _, k := range []struct {
			prefix string
			dst    *int64
		}{{"VmRSS:", &st.rssKiB}, {"VmHWM:", &st.hwmKiB}} {
			if strings.HasPrefix(line, k.prefix) {
				fs := strings.Fields(line[len(k.prefix):])
				if len(fs) > 0 {
					*k.dst, _ = strconv.ParseInt(fs[0], 10, 64)
				}
			}
		}
	}
	st.ok = true
	return st
}

// machineBusy returns the CPU seconds the machine spent in user and system
// mode (/proc/stat's cpu line: user, nice, system). Interrupt and softirq
// time (loopback networking, mostly) is left out, as processes' own times
// leave it out.
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy float64
	for _, v := range f[1:min(4, len(f))] {
		x, _ := strconv.ParseFloat(v, 64)
		busy += x
	}
	return busy / clockTicks
}

// sampler follows the CPU time and resident memory of named processes
// while a phase runs.
type sampler struct {
	busy0  float64
	self0  float64
	pids   map[string]int
	start  map[string]procStat
	mu     sync.Mutex
	maxRSS map[string]int64
	stop   chan struct{}
	done   chan struct{}
}

// startSampler follows pids; onExceed (when not nil) is called once if a
// Sextant process's resident memory passes limitKiB.
func startSampler(pids map[string]int, limitKiB int64, onExceed func(name string, rssKiB int64)) *sampler {
	s := &sampler{pids: maps.Clone(pids), start: map[string]procStat{}, maxRSS: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{}),
		busy0: machineBusy(), self0: readProc(os.Getpid()).cpu}
	pids = s.pids
	for name, pid := range pids {
		st := readProc(pid)
		s.start[name] = st
		s.maxRSS[name] = st.rssKiB
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				for name, pid := range s.pids {
					st := readProc(pid)
					s.mu.Lock()
					s.maxRSS[name] = max(s.maxRSS[name], st.rssKiB)
					s.mu.Unlock()
					stack := name == "kafka" || name == "cassandra" || name == "redis"
					if onExceed != nil && !stack && limitKiB > 0 && st.rssKiB > limitKiB {
						onExceed(name, st.rssKiB)
						onExceed = nil
					}
				}
			}
		}
	}()
	return s
}

// ProcUsage is one process's use of the machine during a phase.
type ProcUsage struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpuSeconds"`
	RSSMaxMiB  float64 `json:"rssMaxMiB"`
	RSSEndMiB  float64 `json:"rssEndMiB"`
}

// finish returns each process's usage, the harness's own CPU seconds and
// the machine's busy CPU seconds over the phase.
func (s *sampler) finish() (map[string]ProcUsage, float64, float64) {
	close(s.stop)
	<-s.done
	busy, self := machineBusy()-s.busy0, readProc(os.Getpid()).cpu-s.self0
	out := map[string]ProcUsage{}
	for name, pid := range s.pids {
		end := readProc(pid)
		if !end.ok {
			continue
		}
		s.mu.Lock()
		mx := max(s.maxRSS[name], end.rssKiB)
		s.mu.Unlock()
		out[name] = ProcUsage{PID: pid, CPUSeconds: end.cpu - s.start[name].cpu, RSSMaxMiB: float64(mx) / 1024, RSSEndMiB: float64(end.rssKiB) / 1024}
	}
	return out, self, busy
}

// stackPIDs finds the Kafka and Cassandra processes of ./tilt/stack.sh
// (read only: the harness never touches them).
func stackPIDs(repo string) map[string]int {
	out := map[string]int{}
	b, err := exec.Command(filepath.Join(repo, "tilt", "stack.sh"), "status").Output()
	if err != nil && len(b) == 0 {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "pid" {
				if pid, err := strconv.Atoi(f[i+1]); err == nil && len(f) > 0 {
					switch f[0] {
					case "kafka", "cassandra", "redis":
						out[f[0]] = pid
					}
				}
			}
		}
	}
	return out
}

// machine describes the box.
type Machine struct {
	memKiB    int64
	Cores     int     `json:"cores"`
	CPU       string  `json:"cpu"`
	MemoryGiB float64 `json:"memoryGiB"`
	Kernel    string  `json:"kernel"`
	Go        string  `json:"go"`
}

func readMachine(goVersion string) Machine {
	m := Machine{Go: goVersion}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "processor") {
				m.Cores++
			}
			if m.CPU == "" && strings.HasPrefix(line, "model name") {
				if _, v, ok := strings.Cut(line, ":"); ok {
					m.CPU = strings.TrimSpace(v)
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				f := strings.Fields(line)
				if len(f) >= 2 {
					kb, _ := strconv.ParseFloat(f[1], 64)
					m.MemoryGiB = float64(int(kb/1024/1024*10+0.5)) / 10
					m.memKiB = int64(kb)
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

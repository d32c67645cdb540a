// Command faults is Sextant's fault suite. It drives traffic through the
// gateway with an acknowledgement ledger (`sextant loadgen --truth`: event
// ids set by the client, every acknowledged batch recorded, a failed batch
// resent with the same ids until it is acknowledged) while it injects one
// fault per scenario: SIGKILL of each process kind, Kafka and Cassandra
// stopped and killed, Redis flapping, a projector paused past its group
// session, and (embedded) a data disk that fills up. After the traffic it
// polls the reports until they equal the ledger and reports, per scenario:
// events acknowledged and counted, lost and duplicated (which must be 0),
// failed requests, the longest time without an acknowledgement, and the
// time until the reports were exact again.
//
//	go run ./bench/faults [--quick] [--scenarios a,b] [--duration 60s] [--rate 3000] [--markdown RELIABILITY.md] [--json bench/faults.json]
//
// The distributed scenarios need the stack of ./tilt/stack.sh (up); the
// disk scenario needs root (it mounts a size-limited tmpfs) and is
// skipped with its reason otherwise. The exit status is 1 when a
// scenario lost or duplicated an event, or its reports did not become
// exact.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/loadgen"
)

// Result is one scenario's figures.
type Result struct {
	Scenario string `json:"scenario"`
	// Run is when the suite run that measured it started (UTC).
	Run     string `json:"run"`
	Backend string `json:"backend"`
	Fault   string `json:"fault"`
	// Skipped says why the scenario did not run.
	Skipped string `json:"skipped,omitempty"`
	// Acked is the events acknowledged to the client; Counted the events
	// the reports count once exact or at the deadline.
	Acked   int64 `json:"acked"`
	Counted int64 `json:"counted"`
	// Lost and Duplicated compare the reports with the ledger per page
	// path (page views) and for the other events.
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	// FailedRequests is the requests that failed and were resent;
	// FailedEvents the events given up on (0: every batch was acked).
	FailedRequests int64   `json:"failedRequests"`
	FailedEvents   int64   `json:"failedEvents"`
	LongestGapMs   float64 `json:"longestAckGapMs"`
	// ExactAfterMs is the time from the end of the traffic until the
	// reports equalled the ledger; -1 if they never did.
	ExactAfterMs   float64  `json:"exactAfterMs"`
	EventsPerSec   float64  `json:"eventsPerSecond"`
	TrafficSeconds float64  `json:"trafficSeconds"`
	Notes          []string `json:"notes,omitempty"`
	Error          string   `json:"error,omitempty"`
}

// ok reports whether the scenario held: nothing lost or doubled, exact
// reports, no error.
func (r *Result) ok() bool {
	return r.Skipped != "" || (r.Error == "" && r.Lost == 0 && r.Duplicated == 0 && r.ExactAfterMs >= 0)
}

type suite struct {
	repo     string
	bin      string
	out      string
	duration time.Duration
	rate     int
	quick    bool
	started  string
	stackEnv []string // SEXTANT_KAFKA_BROKERS… of the stack
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("faults: ")
	quick := flag.Bool("quick", false, "the bounded form test.sh runs: 20 s of traffic per scenario, the scenarios marked quick")
	only := flag.String("scenarios", "", "comma-separated scenario names (default: all, or the quick ones with --quick)")
	duration := flag.Duration("duration", 60*time.Second, "traffic per scenario (--quick: 20s)")
	rate := flag.Int("rate", 3000, "events per second sent through the gateway (--quick: 1500)")
	mdPath := flag.String("markdown", "", "write the results table between the markers of this file (e.g. RELIABILITY.md)")
	jsonPath := flag.String("json", "", "write the results as JSON to this file")
	list := flag.Bool("list", false, "list the scenarios and exit")
	merge := flag.String("merge", "", "take the results of the scenarios not run now from this JSON file (of an earlier --json)")
	flag.Parse()
	if *list {
		for _, sc := range scenarios {
			fmt.Printf("%-22s %-11s quick=%-5v %s\n", sc.name, sc.backend, sc.quick, sc.fault)
		}
		return
	}
	s := &suite{duration: *duration, rate: *rate, quick: *quick, started: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	if *quick {
		if !isSet("duration") {
			s.duration = 20 * time.Second
		}
		if !isSet("rate") {
			s.rate = 1500
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := s.setup(ctx); err != nil {
		log.Fatal(err)
	}
	var chosen []scenario
	for _, sc := range scenarios {
		switch {
		case *only != "":
			if slices.Contains(strings.Split(*only, ","), sc.name) {
				chosen = append(chosen, sc)
			}
		case !*quick || sc.quick:
			chosen = append(chosen, sc)
		}
	}
	if len(chosen) == 0 {
		log.Fatalf("no scenario matches %q (see --list)", *only)
	}
	results := s.run(ctx, chosen)
	failed := 0
	for _, r := range results {
		if !r.ok() {
			failed++
		}
	}
	if *merge != "" {
		var err error
		if results, err = mergeResults(*merge, results); err != nil {
			log.Fatal(err)
		}
	}
	table := markdownTable(results, s)
	fmt.Println(table)
	if *jsonPath != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if *mdPath != "" {
		if err := replaceBetweenMarkers(*mdPath, table); err != nil {
			log.Fatal(err)
		}
	}
	if failed > 0 {
		log.Printf("%d scenario(s) lost or duplicated events, did not become exact, or failed: logs in %s", failed, s.out)
		os.Exit(1)
	}
	log.Printf("every scenario: 0 lost, 0 duplicated, reports exact (logs in %s)", s.out)
}

func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// setup builds the binary and reads the stack's addresses.
func (s *suite) setup(ctx context.Context) error {
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return fmt.Errorf("run from the repository: %w", err)
	}
	s.repo = strings.TrimSpace(string(out))
	s.out = filepath.Join(s.repo, "bench", "out", "faults-"+time.Now().UTC().Format("20060102T150405"))
	if err := os.MkdirAll(s.out, 0o755); err != nil {
		return err
	}
	s.bin = filepath.Join(s.out, "sextant")
	build := exec.CommandContext(ctx, "go", "build", "-o", s.bin, "./cmd/sextant")
	build.Dir, build.Stdout, build.Stderr = s.repo, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	envOut, err := exec.Command(filepath.Join(s.repo, "tilt", "stack.sh"), "env").Output()
	if err == nil {
		for _, line := range strings.Split(string(envOut), "\n") {
			if kv, ok := strings.CutPrefix(line, "export "); ok && !strings.HasPrefix(kv, "SEXTANT_CQL_KEYSPACE=") {
				s.stackEnv = append(s.stackEnv, kv)
			}
		}
	}
	return nil
}

// stackUp reports whether ./tilt/stack.sh runs every server.
func (s *suite) stackUp() bool {
	return exec.Command(filepath.Join(s.repo, "tilt", "stack.sh"), "status").Run() == nil
}

func (s *suite) stack(args ...string) error {
	cmd := exec.Command(filepath.Join(s.repo, "tilt", "stack.sh"), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("stack.sh %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// baseEnv is the environment without SEXTANT_ settings, plus extra.
func baseEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SEXTANT_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func (s *suite) run(ctx context.Context, chosen []scenario) []*Result {
	var results []*Result
	byBackend := map[string][]scenario{}
	for _, sc := range chosen {
		byBackend[sc.backend] = append(byBackend[sc.backend], sc)
	}
	for _, backend := range []string{"distributed", "embedded"} {
		scs := byBackend[backend]
		if len(scs) == 0 {
			continue
		}
		var c *cluster
		var err error
		skip := ""
		switch backend {
		case "distributed":
			if !s.stackUp() {
				skip = "the stack is not running: ./tilt/stack.sh up"
			} else {
				c, err = s.newDistributed(ctx, len(scs))
			}
		case "embedded":
			c, err = s.newEmbedded(ctx, len(scs))
			if errors.Is(err, errSkip) {
				skip, err = err.Error(), nil
			}
		}
		for i, sc := range scs {
			r := &Result{Scenario: sc.name, Run: s.started, Backend: backend, Fault: sc.fault}
			results = append(results, r)
			switch {
			case skip != "":
				r.Skipped = skip
			case err != nil:
				r.Error = err.Error()
			default:
				log.Printf("%s: %s", sc.name, sc.fault)
				s.runScenario(ctx, c, sc, c.props[i], r)
				log.Printf("%s: acked %d counted %d lost %d duplicated %d, failed requests %d, longest gap %.0f ms, exact %.1f s after the traffic%s",
					sc.name, r.Acked, r.Counted, r.Lost, r.Duplicated, r.FailedRequests, r.LongestGapMs, r.ExactAfterMs/1000, errSuffix(r.Error))
			}
		}
		if c != nil {
			c.close()
		}
	}
	return results
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return "; error: " + e
}

// --- processes ---

// proc is one `sextant serve` the suite runs (and restarts).
type proc struct {
	name, addr string
	args       []string
	env        []string
	bin, log   string
	cmd        *exec.Cmd
	exited     chan struct{}
}

func (p *proc) start(ctx context.Context) error {
	lf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(lf, "=== start %s\n", time.Now().UTC().Format(time.RFC3339Nano))
	p.cmd = exec.Command(p.bin, append([]string{"serve", "--addr", p.addr, "--demo=false", "--log-level", "warn"}, p.args...)...)
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = lf, lf
	if err := p.cmd.Start(); err != nil {
		lf.Close()
		return err
	}
	exited := make(chan struct{})
	p.exited = exited
	cmd := p.cmd
	go func() { _ = cmd.Wait(); lf.Close(); close(exited) }()
	return p.waitReady(ctx, 90*time.Second)
}

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *proc) waitReady(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return fmt.Errorf("%s exited (see %s)", p.name, p.log)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %v (see %s)", p.name, within, p.log)
}

func (p *proc) signal(sig syscall.Signal) error {
	if !p.alive() {
		return fmt.Errorf("%s is not running", p.name)
	}
	return p.cmd.Process.Signal(sig)
}

func (p *proc) kill() {
	if p.alive() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *proc) stop() {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.kill()
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// cluster is the deployment a backend's scenarios share.
type cluster struct {
	s       *suite
	gateway *proc // where the traffic and the reports go
	procs   map[string]*proc
	props   []loadgen.Keys
	env     []string
	cleanup []func()
}

func (c *cluster) close() {
	for _, p := range c.procs {
		p.stop()
	}
	for _, f := range slices.Backward(c.cleanup) {
		f()
	}
}

// ready waits until every process answers /readyz 200, restarting one
// that exited (a supervisor would).
func (c *cluster) ready(ctx context.Context, within time.Duration) error {
	for _, name := range sortedKeys(c.procs) {
		p := c.procs[name]
		if !p.alive() {
			if err := p.start(ctx); err != nil {
				return err
			}
			continue
		}
		if err := p.waitReady(ctx, within); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sextant runs a CLI command of the binary and returns its stdout.
func (c *cluster) sextant(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.s.bin, args...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("sextant %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

func (c *cluster) createProperties(ctx context.Context, n int, extra ...string) error {
	out, err := c.sextant(ctx, append([]string{"property", "create", "--offline", "--name", "faults", "--count", strconv.Itoa(n), "--json"}, extra...)...)
	if err != nil {
		return err
	}
	c.props, err = loadgen.ReadKeys(strings.NewReader(out))
	if err == nil && len(c.props) != n {
		err = fmt.Errorf("property create --count %d printed %d keys", n, len(c.props))
	}
	return err
}

// highLimits lifts the rate limits: the load generator is one address
// sending one property's traffic.
var highLimits = []string{"--collect-rate", "1000000000", "--collect-burst", "1000000000", "--ip-rate", "1000000000", "--ip-burst", "1000000000"}

// newDistributed runs a gateway, two collectors, two projectors and an
// insights process on a topic and keyspace of the run's own.
func (s *suite) newDistributed(ctx context.Context, properties int) (*cluster, error) {
	run := strconv.FormatInt(time.Now().UnixMilli(), 36)
	env := baseEnv(append(slices.Clone(s.stackEnv), "SEXTANT_KAFKA_TOPIC=faults-"+run, "SEXTANT_CQL_KEYSPACE=faults_"+run)...)
	c := &cluster{s: s, env: env, procs: map[string]*proc{}}
	if _, err := c.sextant(ctx, "kafka", "init", "--kafka-partitions", "4"); err != nil {
		return nil, err
	}
	if _, err := c.sextant(ctx, "migrate"); err != nil {
		return nil, err
	}
	if err := c.createProperties(ctx, properties); err != nil {
		return nil, err
	}
	addrs := map[string]string{}
	for _, name := range []string{"collect-1", "collect-2", "projection-1", "projection-2", "insights", "gateway"} {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		addrs[name] = addr
	}
	spec := []struct{ name, args string }{
		{"collect-1", "--services=collect"}, {"collect-2", "--services=collect"},
		{"projection-1", "--services=projection"}, {"projection-2", "--services=projection"},
		{"insights", "--services=insights"},
		{"gateway", "--services=gateway --collect-backends=" + addrs["collect-1"] + "," + addrs["collect-2"] +
			" --projection-backends=" + addrs["projection-1"] + "," + addrs["projection-2"] + " --insights-backends=" + addrs["insights"]},
	}
	for _, sp := range spec {
		dir := filepath.Join(s.out, "data-"+sp.name)
		p := &proc{name: sp.name, addr: addrs[sp.name], bin: s.bin, env: env, log: filepath.Join(s.out, sp.name+".log"),
			args: slices.Concat(strings.Fields(sp.args), []string{"--data-dir", dir}, s.geoipArgs(), highLimits)}
		c.procs[sp.name] = p
		if err := p.start(ctx); err != nil {
			c.close()
			return nil, err
		}
	}
	c.gateway = c.procs["gateway"]
	return c, nil
}

// geoipArgs points the servers at the city database test.sh fetched,
// or turns the lookups off: without either, each server would fetch its
// own copy (130 MB) into its data directory in the background.
func (s *suite) geoipArgs() []string {
	if db := filepath.Join(s.repo, "tilt", ".stack", "geoip"); dirExists(db) {
		return []string{"--geoip-db", db}
	}
	return []string{"--geoip=off"}
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

var errSkip = errors.New("skipped")

// diskSize is the size of the disk scenario's filesystem.
const diskSize = 512 << 20

// newEmbedded runs one `sextant serve` whose data directory is a
// size-limited tmpfs of its own.
func (s *suite) newEmbedded(ctx context.Context, properties int) (*cluster, error) {
	mnt := filepath.Join(s.out, "disk")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: mounting a size-limited filesystem needs root", errSkip)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(diskSize), "sextant-faults", mnt).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%w: mount -t tmpfs: %v: %s", errSkip, err, bytes.TrimSpace(out))
	}
	c := &cluster{s: s, env: baseEnv(), procs: map[string]*proc{}}
	c.cleanup = append(c.cleanup, func() { _ = exec.Command("umount", mnt).Run() })
	if err := c.createProperties(ctx, properties, "--data-dir", mnt); err != nil {
		c.close()
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		c.close()
		return nil, err
	}
	p := &proc{name: "server", addr: addr, bin: s.bin, env: c.env, log: filepath.Join(s.out, "server.log"),
		args: slices.Concat([]string{"--data-dir", mnt}, s.geoipArgs(), highLimits)}
	c.procs["server"] = p
	if err := p.start(ctx); err != nil {
		c.close()
		return nil, err
	}
	c.gateway = p
	return c, nil
}

// --- scenarios ---

// scenario injects its fault at a quarter of the traffic and removes it
// (restarts what it killed, starts what it stopped) before the traffic
// ends.
type scenario struct {
	name, backend, fault string
	quick                bool
	inject               func(ctx context.Context, c *cluster, r *Result) error
}

func killRestart(name string) func(context.Context, *cluster, *Result) error {
	return func(ctx context.Context, c *cluster, r *Result) error {
		p := c.procs[name]
		p.kill()
		time.Sleep(2 * time.Second)
		return p.start(ctx)
	}
}

func stackOutage(how, server string, down time.Duration) func(context.Context, *cluster, *Result) error {
	return func(ctx context.Context, c *cluster, r *Result) error {
		if err := c.s.stack(how, server); err != nil {
			return err
		}
		time.Sleep(down)
		return c.s.stack("start", server)
	}
}

var scenarios = []scenario{
	{name: "kill-collect", backend: "distributed", quick: true, fault: "SIGKILL one of two collectors, restart it 2 s later",
		inject: killRestart("collect-1")},
	{name: "kill-projection", backend: "distributed", quick: true, fault: "SIGKILL one of two projectors, restart it 2 s later",
		inject: killRestart("projection-1")},
	{name: "kill-insights", backend: "distributed", fault: "SIGKILL the insights process, restart it 2 s later",
		inject: killRestart("insights")},
	{name: "kill-gateway", backend: "distributed", quick: true, fault: "SIGKILL the gateway, restart it 2 s later on its address",
		inject: killRestart("gateway")},
	{name: "stop-kafka", backend: "distributed", fault: "stop Kafka (SIGTERM), start it 10 s later",
		inject: stackOutage("stop", "kafka", 10*time.Second)},
	{name: "kill-kafka", backend: "distributed", quick: true, fault: "SIGKILL Kafka, start it 8 s later",
		inject: stackOutage("kill", "kafka", 8*time.Second)},
	{name: "stop-cassandra", backend: "distributed", fault: "stop Cassandra (SIGTERM), start it 10 s later",
		inject: stackOutage("stop", "cassandra", 10*time.Second)},
	{name: "kill-cassandra", backend: "distributed", quick: true, fault: "SIGKILL Cassandra, start it 5 s later",
		inject: stackOutage("kill", "cassandra", 5*time.Second)},
	{name: "flap-redis", backend: "distributed", quick: true, fault: "stop Redis for 2 s, three times",
		inject: func(ctx context.Context, c *cluster, r *Result) error {
			for range 3 {
				if err := c.s.stack("stop", "redis"); err != nil {
					return err
				}
				time.Sleep(2 * time.Second)
				if err := c.s.stack("start", "redis"); err != nil {
					return err
				}
				time.Sleep(time.Second)
			}
			return nil
		}},
	{name: "pause-projection", backend: "distributed", quick: true, fault: "SIGSTOP a projector for 15 s (its group session times out after 8 s), then SIGCONT",
		inject: func(ctx context.Context, c *cluster, r *Result) error {
			p := c.procs["projection-1"]
			if err := p.signal(syscall.SIGSTOP); err != nil {
				return err
			}
			time.Sleep(15 * time.Second)
			return p.signal(syscall.SIGCONT)
		}},
	{name: "kill-server", backend: "embedded", fault: "SIGKILL the embedded all-in-one server, restart it 2 s later",
		inject: killRestart("server")},
	{name: "fill-disk", backend: "embedded", quick: true, fault: "fill the embedded data disk (a 512 MiB tmpfs) to 64 MiB free, below the server's 128 MiB reserve, for 6 s, then free it",
		inject: fillDisk(64 << 20)},
	{name: "full-disk", backend: "embedded", quick: true, fault: "fill the embedded data disk (a 512 MiB tmpfs) completely for 6 s, then free it",
		inject: fillDisk(0)},
}

// fillDisk writes a file until the data disk has only leave bytes free
// (or is full), holds it 6 s while the traffic goes on, and removes it;
// if the server exited meanwhile it is restarted (as a supervisor would)
// and the scenario says so.
func fillDisk(leave int64) func(context.Context, *cluster, *Result) error {
	return func(ctx context.Context, c *cluster, r *Result) error {
		return fill(ctx, c, r, leave)
	}
}

func fill(ctx context.Context, c *cluster, r *Result, leave int64) error {
	p := c.procs["server"]
	disk := filepath.Join(filepath.Dir(p.log), "disk")
	filler := filepath.Join(disk, "filler")
	r.Notes = append(r.Notes, fmt.Sprintf("%d MiB free before", freeBytes(disk)>>20))
	f, err := os.Create(filler)
	if err != nil {
		return err
	}
	chunk := make([]byte, 1<<20)
	var n int64
	for leave == 0 || freeBytes(disk) > leave+int64(len(chunk)) {
		w, err := f.Write(chunk)
		n += int64(w)
		if err != nil {
			break
		}
	}
	_ = f.Sync()
	f.Close()
	r.Notes = append(r.Notes, fmt.Sprintf("filled %d MiB, %d MiB left free", n>>20, freeBytes(disk)>>20))
	time.Sleep(6 * time.Second)
	if err := os.Remove(filler); err != nil {
		return err
	}
	if !p.alive() {
		r.Notes = append(r.Notes, "the server stopped on the full disk (Pebble ends the process on a failed WAL write) and was restarted")
		return p.start(ctx)
	}
	r.Notes = append(r.Notes, "the server stayed up")
	return nil
}

// freeBytes is what dir's filesystem has free for unprivileged writers.
func freeBytes(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// --- one scenario ---

func (s *suite) runScenario(ctx context.Context, c *cluster, sc scenario, k loadgen.Keys, r *Result) {
	if err := c.ready(ctx, 120*time.Second); err != nil {
		r.Error = "not ready before the scenario: " + err.Error()
		return
	}
	truthPath := filepath.Join(s.out, sc.name+"-truth.json")
	args := []string{"loadgen", "--server", "http://" + c.gateway.addr, "--mode", "unary", "--keys", k.WriteKey,
		"--rate", strconv.Itoa(s.rate), "--duration", s.duration.String(), "--batch", "10", "--concurrency", "16",
		"--retries", "1000000", "--timeout", "10s", "--history", "0", "--truth", truthPath, "--json", "--progress", "0",
		"--seed", strconv.Itoa(int(time.Now().UnixNano() % 1e9))}
	lg := exec.CommandContext(ctx, s.bin, args...)
	var stdout bytes.Buffer
	lf, err := os.Create(filepath.Join(s.out, sc.name+"-loadgen.log"))
	if err != nil {
		r.Error = err.Error()
		return
	}
	defer lf.Close()
	lg.Stdout, lg.Stderr = &stdout, lf
	start := time.Now()
	if err := lg.Start(); err != nil {
		r.Error = err.Error()
		return
	}
	lgDone := make(chan error, 1)
	go func() { lgDone <- lg.Wait() }()

	faultErr := make(chan error, 1)
	go func() {
		select {
		case <-time.After(s.duration / 4):
		case <-ctx.Done():
			faultErr <- ctx.Err()
			return
		}
		log.Printf("%s: injecting at %.1fs", sc.name, time.Since(start).Seconds())
		err := sc.inject(ctx, c, r)
		log.Printf("%s: fault removed at %.1fs", sc.name, time.Since(start).Seconds())
		faultErr <- err
	}()
	if err := <-faultErr; err != nil {
		r.Error = "fault: " + err.Error()
	}
	// The traffic ends at the duration; a batch still being resent is
	// waited for (bounded, in case the fault was not undone).
	var lgErr error
	select {
	case lgErr = <-lgDone:
	case <-time.After(s.duration + 3*time.Minute):
		_ = lg.Process.Kill()
		lgErr = <-lgDone
		r.Notes = append(r.Notes, "the load generator was still resending batches 3 minutes after its duration")
	}
	trafficEnd := time.Now()
	r.TrafficSeconds = trafficEnd.Sub(start).Seconds()
	var res struct {
		EventsAcked     int64   `json:"eventsAcked"`
		EventsFailed    int64   `json:"eventsFailed"`
		EventsRejected  int64   `json:"eventsRejected"`
		Retries         int64   `json:"retries"`
		EventsPerSecond float64 `json:"eventsPerSecond"`
		LongestAckGapMs float64 `json:"longestAckGapMs"`
		Errors          []string
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		r.Error = fmt.Sprintf("loadgen printed no result (%v, exit %v)", err, lgErr)
		return
	}
	r.Acked, r.FailedEvents, r.FailedRequests = res.EventsAcked, res.EventsFailed, res.Retries
	r.LongestGapMs, r.EventsPerSec = res.LongestAckGapMs, res.EventsPerSecond
	if res.EventsRejected > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d events rejected: %v", res.EventsRejected, res.Errors))
	}
	var truth loadgen.TruthReport
	b, err := os.ReadFile(truthPath)
	if err == nil {
		err = json.Unmarshal(b, &truth)
	}
	if err != nil || len(truth.Properties) != 1 {
		r.Error = fmt.Sprintf("truth %s: %v (%d properties)", truthPath, err, len(truth.Properties))
		return
	}
	if err := c.ready(ctx, 120*time.Second); err != nil {
		r.Notes = append(r.Notes, "not ready after the scenario: "+err.Error())
	}
	s.compare(ctx, c, k, truth, trafficEnd, r)
}

// compare polls the reports through the gateway until they equal the
// truth (or 3 minutes passed) and sets the figures.
func (s *suite) compare(ctx context.Context, c *cluster, k loadgen.Keys, truth loadgen.TruthReport, trafficEnd time.Time, r *Result) {
	want := truth.Properties[0]
	conn, err := grpc.NewClient("passthrough:///"+c.gateway.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		r.Error = err.Error()
		return
	}
	defer conn.Close()
	ic := insightsv1.NewInsightsServiceClient(conn)
	rctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+k.ReadKey)
	req := &insightsv1.RunReportRequest{
		PropertyId:         k.PropertyID,
		Dimensions:         []*insightsv1.Dimension{{Name: "pagePath"}},
		Metrics:            []*insightsv1.Metric{{Name: "screenPageViews"}, {Name: "eventCount"}},
		DateRanges:         []*insightsv1.DateRange{{StartDate: truth.StartDate, EndDate: truth.EndDate}},
		MetricAggregations: []insightsv1.MetricAggregation{insightsv1.MetricAggregation_TOTAL},
		Limit:              100_000,
	}
	deadline := trafficEnd.Add(3 * time.Minute)
	var lastErr error
	for {
		resp, err := ic.RunReport(rctx, req)
		if err == nil && len(resp.Totals) == 1 {
			lastErr = nil
			views := map[string]int64{}
			for _, row := range resp.Rows {
				n, _ := strconv.ParseInt(row.MetricValues[0].Value, 10, 64)
				views[row.DimensionValues[0].Value] += n
			}
			var totalViews, events int64
			totalViews, _ = strconv.ParseInt(resp.Totals[0].MetricValues[0].Value, 10, 64)
			events, _ = strconv.ParseInt(resp.Totals[0].MetricValues[1].Value, 10, 64)
			r.Counted = events
			r.Lost, r.Duplicated = 0, 0
			for path, n := range want.PagePathViews {
				d := views[path] - n
				r.Lost, r.Duplicated = r.Lost+max(0, -d), r.Duplicated+max(0, d)
			}
			for path, n := range views {
				if _, ok := want.PagePathViews[path]; !ok {
					r.Duplicated += n
				}
			}
			other := (events - totalViews) - (want.EventCount - want.ScreenPageViews)
			r.Lost, r.Duplicated = r.Lost+max(0, -other), r.Duplicated+max(0, other)
			if r.Lost == 0 && r.Duplicated == 0 && events == want.EventCount {
				r.ExactAfterMs = float64(time.Since(trafficEnd).Milliseconds())
				return
			}
		} else if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.ExactAfterMs = -1
			if lastErr != nil {
				r.Error = "reports: " + lastErr.Error()
			}
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// --- output ---

// mergeResults returns the results of every scenario, in the catalogue's
// order: those of now, else those of the JSON file path.
func mergeResults(path string, now []*Result) ([]*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var before []*Result
	if err := json.Unmarshal(b, &before); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	find := func(rs []*Result, name string) *Result {
		for _, r := range rs {
			if r.Scenario == name {
				return r
			}
		}
		return nil
	}
	var out []*Result
	for _, sc := range scenarios {
		if r := find(now, sc.name); r != nil {
			out = append(out, r)
		} else if r := find(before, sc.name); r != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

const (
	beginMarker = "<!-- faults:begin (generated by go run ./bench/faults) -->"
	endMarker   = "<!-- faults:end -->"
)

func markdownTable(results []*Result, s *suite) string {
	var b strings.Builder
	mode := "full"
	if s.quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "Run of %s (%s form): %v of traffic per scenario at %d events/s through the gateway, gRPC Collect, batches of 10, a failed batch resent with the same event ids until acknowledged; the fault starts at a quarter of the traffic. Rows of an earlier run (`--merge`) say so.\n\n",
		s.started, mode, s.duration, s.rate)
	b.WriteString("| scenario | fault | acked | counted | lost | duplicated | failed requests | longest gap without an ack | exact after the traffic | notes |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range results {
		if r.Skipped != "" {
			fmt.Fprintf(&b, "| %s | %s | | | | | | | | skipped: %s |\n", r.Scenario, r.Fault, r.Skipped)
			continue
		}
		exact := "never (3 min)"
		if r.ExactAfterMs >= 0 {
			exact = fmt.Sprintf("%.1f s", r.ExactAfterMs/1000)
		}
		notes := strings.Join(r.Notes, "; ")
		if r.Run != s.started {
			notes = strings.TrimSuffix("run of "+r.Run+"; "+notes, "; ")
		}
		if r.Error != "" {
			notes = strings.TrimPrefix(notes+"; error: "+r.Error, "; ")
		}
		if r.FailedEvents > 0 {
			notes = strings.TrimPrefix(notes+fmt.Sprintf("; %d events given up on", r.FailedEvents), "; ")
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | **%d** | **%d** | %d | %.1f s | %s | %s |\n", r.Scenario, r.Fault, r.Acked, r.Counted,
			r.Lost, r.Duplicated, r.FailedRequests, r.LongestGapMs/1000, exact, strings.ReplaceAll(notes, "|", "\\|"))
	}
	return b.String()
}

// replaceBetweenMarkers puts table between the markers of path (which
// must have them).
func replaceBetweenMarkers(path, table string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q … %q markers", path, beginMarker, endMarker)
	}
	s = s[:i+len(beginMarker)] + "\n" + table + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

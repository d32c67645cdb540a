package main

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// --- the projection's counters (Prometheus /metrics) ---

// scrapeMetrics reads the Prometheus text of http://addr/metrics and sums
// each metric over its label sets.
func scrapeMetrics(ctx context.Context, addr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", addr, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || !strings.HasPrefix(line, "sextant_") {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if j := strings.LastIndexByte(rest, ' '); j >= 0 {
			if v, err := strconv.ParseFloat(strings.TrimSpace(rest[j+1:]), 64); err == nil {
				out[name] += v
			}
		}
	}
	return out, sc.Err()
}

// The metrics the store counters come from. additionsMetric is not
// exported by every version: without it, additions written are estimated
// as the additions compacted plus the growth of those pending.
const (
	additionsMetric     = "sextant_projection_additions_total"
	compactedMetric     = "sextant_compacted_additions_total"
	pendingMetric       = "sextant_pending_additions"
	registryBytesMetric = "sextant_registry_cache_bytes"
	projectedMetric     = "sextant_projected_events_total"
	checkpointsMetric   = "sextant_projection_flush_seconds_count"
)

// StoreDelta is what the projection process(es) wrote over a phase, from
// their /metrics.
type StoreDelta struct {
	// Events the projections consumed (all outcomes, all versions).
	Events int64 `json:"events"`
	// Additions written: one row per property and hour per checkpoint;
	// AdditionsEstimated when taken as compacted + growth of pending
	// (no sextant_projection_additions_total).
	Additions          float64 `json:"additions"`
	AdditionsEstimated bool    `json:"additionsEstimated,omitempty"`
	Compacted          float64 `json:"compacted"`
	// Checkpoints committed (each also writes its partition's progress).
	Checkpoints float64 `json:"checkpoints"`
	PendingEnd  float64 `json:"pendingEnd"`
}

// RowsPer1k is the rows the projection wrote per 1,000 events: additions
// and progress rows (one per checkpoint). Compaction's hour and day blocks
// are not counted.
func (d *StoreDelta) RowsPer1k() float64 {
	if d == nil || d.Events <= 0 {
		return 0
	}
	return (d.Additions + d.Checkpoints) / float64(d.Events) * 1000
}

// scrapeAll sums the metrics of every address; nil when one fails (a
// stopped projection).
func scrapeAll(ctx context.Context, addrs []string) map[string]float64 {
	if len(addrs) == 0 {
		return nil
	}
	sum := map[string]float64{}
	for _, a := range addrs {
		m, err := scrapeMetrics(ctx, a)
		if err != nil {
			return nil
		}
		for k, v := range m {
			sum[k] += v
		}
	}
	return sum
}

func storeDelta(before, after map[string]float64) *StoreDelta {
	if before == nil || after == nil {
		return nil
	}
	d := &StoreDelta{
		Events:      int64(after[projectedMetric] - before[projectedMetric]),
		Compacted:   after[compactedMetric] - before[compactedMetric],
		Checkpoints: after[checkpointsMetric] - before[checkpointsMetric],
		PendingEnd:  after[pendingMetric],
	}
	if _, ok := after[additionsMetric]; ok {
		d.Additions = after[additionsMetric] - before[additionsMetric]
	} else {
		d.Additions = max(0, d.Compacted+after[pendingMetric]-before[pendingMetric])
		d.AdditionsEstimated = true
	}
	if d.Events <= 0 {
		return nil
	}
	return d
}

// waitCompactionSettled waits until the compactors have no addition
// pending, or have stopped making progress (what is left waits for its
// day's batch: CompactionConfig.MaxWait), or limit has passed. It returns
// the additions still pending and how long it waited.
func waitCompactionSettled(ctx context.Context, addrs []string, limit time.Duration) (float64, time.Duration) {
	start := time.Now()
	var lastPending, lastCompacted float64 = -1, -1
	idle := 0
	for {
		m := scrapeAll(ctx, addrs)
		if m == nil {
			return -1, time.Since(start)
		}
		p, c := m[pendingMetric], m[compactedMetric]
		if p == 0 && time.Since(start) > 3*time.Second {
			return 0, time.Since(start)
		}
		if p >= lastPending && c == lastCompacted {
			idle++
		} else {
			idle = 0
		}
		if idle >= 3 || time.Since(start) > limit {
			return p, time.Since(start)
		}
		lastPending, lastCompacted = p, c
		select {
		case <-ctx.Done():
			return p, time.Since(start)
		case <-time.After(2 * time.Second):
		}
	}
}

// --- bytes on disk ---

// StoreSize is the read model's and the log's size on disk at one point.
type StoreSize struct {
	When         string  `json:"when"`
	StoredEvents int64   `json:"storedEvents"`
	ViewBytes    int64   `json:"viewBytes"`
	LogBytes     int64   `json:"logBytes"`
	What         string  `json:"what"`
	Pending      float64 `json:"pendingAdditions"` // additions not compacted yet (-1: unknown)
	Seconds      float64 `json:"seconds"`          // to measure (flush included)
	Error        string  `json:"error,omitempty"`
}

func (s StoreSize) viewPerEvent() float64 {
	if s.StoredEvents <= 0 {
		return 0
	}
	return float64(s.ViewBytes) / float64(s.StoredEvents)
}

func (s StoreSize) logPerEvent() float64 {
	if s.StoredEvents <= 0 {
		return 0
	}
	return float64(s.LogBytes) / float64(s.StoredEvents)
}

// dirSize sums the sizes of the regular files under dir whose path
// (relative to dir) keep accepts (all when nil).
func dirSize(dir string, keep func(rel string) bool) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) { // a file compacted away meanwhile
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		if keep != nil && !keep(rel) {
			return nil
		}
		if info, err := d.Info(); err == nil {
			n += onDisk(info)
		}
		return nil
	})
	return n, err
}

// onDisk is a file's bytes on disk: its size, or the blocks allocated
// when fewer (Kafka's index files are preallocated sparse files of 10 MB).
func onDisk(info fs.FileInfo) int64 {
	n := info.Size()
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		n = min(n, st.Blocks*512)
	}
	return n
}

// embeddedSize is the embedded data directory's view store (Pebble:
// sstables, WAL, manifest) and event log.
func embeddedSize(dir string) (views, log int64, err error) {
	if views, err = dirSize(filepath.Join(dir, "views"), nil); err != nil {
		return
	}
	log, err = dirSize(filepath.Join(dir, "log"), nil)
	return
}

// procArgs returns a process's command line.
func procArgs(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// cassandraDataDir finds the first data_file_directories entry of the
// running Cassandra: from its cassandra.yaml (-Dcassandra.config), else
// <cassandra.storagedir>/data.
func cassandraDataDir(pid int) (string, error) {
	var storage string
	for _, a := range procArgs(pid) {
		if v, ok := strings.CutPrefix(a, "-Dcassandra.config="); ok {
			v = strings.TrimPrefix(v, "file://")
			if b, err := os.ReadFile(v); err == nil {
				lines := strings.Split(string(b), "\n")
				for i, l := range lines {
					if strings.HasPrefix(l, "data_file_directories:") && i+1 < len(lines) {
						if d, ok := strings.CutPrefix(strings.TrimSpace(lines[i+1]), "- "); ok {
							return strings.TrimSpace(d), nil
						}
					}
				}
			}
		}
		if v, ok := strings.CutPrefix(a, "-Dcassandra.storagedir="); ok {
			storage = v
		}
	}
	if storage != "" {
		return filepath.Join(storage, "data"), nil
	}
	return "", fmt.Errorf("cassandra (pid %d): no data directory on its command line", pid)
}

// kafkaLogDir finds log.dirs (the first) in the running broker's
// server.properties (the last argument).
func kafkaLogDir(pid int) (string, error) {
	args := procArgs(pid)
	if len(args) == 0 {
		return "", fmt.Errorf("kafka (pid %d): no command line", pid)
	}
	b, err := os.ReadFile(args[len(args)-1])
	if err != nil {
		return "", fmt.Errorf("kafka (pid %d): %w", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "log.dirs="); ok {
			return strings.Split(v, ",")[0], nil
		}
	}
	return "", fmt.Errorf("kafka (pid %d): no log.dirs in %s", pid, args[len(args)-1])
}

// flushKeyspace makes Cassandra write the keyspace's memtables to
// sstables without nodetool: it sets memtable_flush_period_in_ms on every
// table of the keyspace (the periodic flush is scheduled when a table's
// options change), waits until the keyspace's size on disk stops
// changing, and sets the period back to 0 (never, the default).
func flushKeyspace(ctx context.Context, keyspace, dataDir string) error {
	sess, err := cqlSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	var tables []string
	iter := sess.Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?`, keyspace).WithContext(ctx).Iter()
	var t string
	for iter.Scan(&t) {
		tables = append(tables, t)
	}
	if err := iter.Close(); err != nil {
		return err
	}
	set := func(ms int) error {
		for _, t := range tables {
			if err := sess.Query(fmt.Sprintf(`ALTER TABLE %s.%s WITH memtable_flush_period_in_ms = %d`, keyspace, t, ms)).WithContext(ctx).Exec(); err != nil {
				return fmt.Errorf("alter %s.%s: %w", keyspace, t, err)
			}
		}
		return nil
	}
	if err := set(1000); err != nil {
		return err
	}
	defer set(0)
	dir := filepath.Join(dataDir, keyspace)
	last, same := int64(-1), 0
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && same < 2; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(1500 * time.Millisecond):
		}
		n, err := dirSize(dir, sstableFile)
		if err != nil {
			return err
		}
		if n == last {
			same++
		} else {
			same = 0
		}
		last = n
	}
	return nil
}

// sstableFile keeps a keyspace directory's live sstable files (not
// snapshots, backups or temporary files of a compaction in progress).
func sstableFile(rel string) bool {
	parts := strings.Split(rel, string(filepath.Separator))
	if len(parts) != 2 { // <table>-<id>/<file>: snapshots/ and backups/ are deeper
		return false
	}
	return !strings.Contains(parts[1], "tmp")
}

// distributedSize flushes the run's keyspace and sums its sstables under
// Cassandra's data directory, and the run's topic's partitions under
// Kafka's log directory.
func distributedSize(ctx context.Context, pids map[string]int, keyspace, topic string) (views, log int64, what string, err error) {
	cpid, kpid := pids["cassandra"], pids["kafka"]
	if cpid == 0 || kpid == 0 {
		return 0, 0, "", fmt.Errorf("the stack's Cassandra and Kafka processes were not found (./tilt/stack.sh status)")
	}
	dataDir, err := cassandraDataDir(cpid)
	if err != nil {
		return 0, 0, "", err
	}
	if err := flushKeyspace(ctx, keyspace, dataDir); err != nil {
		return 0, 0, "", fmt.Errorf("flush %s: %w", keyspace, err)
	}
	if views, err = dirSize(filepath.Join(dataDir, keyspace), sstableFile); err != nil {
		return 0, 0, "", err
	}
	logDir, err := kafkaLogDir(kpid)
	if err != nil {
		return 0, 0, "", err
	}
	part := regexp.MustCompile("^" + regexp.QuoteMeta(topic) + `-[0-9]+$`)
	log, err = dirSize(logDir, func(rel string) bool {
		return part.MatchString(strings.Split(rel, string(filepath.Separator))[0])
	})
	what = fmt.Sprintf("Cassandra: the sstables of keyspace %s under %s after a flush (compressed, with their indexes and bloom filters; the commit log, shared by all keyspaces, is left out); Kafka: the segments and indexes of topic %s under %s",
		keyspace, dataDir, topic, logDir)
	return views, log, what, err
}

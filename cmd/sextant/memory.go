package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultProjectionMemory is the default --projection-memory: an eighth of
// the memory the process may use (the machine's, or its cgroup's limit when
// lower), at least 256 MiB; 1 GiB where neither can be read.
func defaultProjectionMemory() int {
	total := machineMemory()
	if total <= 0 {
		return 1 << 30
	}
	return max(256<<20, int(total/8))
}

// machineMemory is MemTotal of /proc/meminfo, lowered to the cgroup v2
// memory.max when that is set; 0 when unknown.
func machineMemory() int64 {
	var total int64
	if f, err := os.Open("/proc/meminfo"); err == nil {
		total = memTotal(f)
		f.Close()
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if lim, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64); err == nil && lim > 0 && (total == 0 || lim < total) {
			total = lim
		}
	}
	return total
}

// memTotal reads MemTotal (in kB) from a /proc/meminfo listing, in bytes.
func memTotal(f io.Reader) int64 {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// goMemoryLimit sets the Go runtime's soft memory limit for a process that
// runs projections, unless GOMEMLIMIT sets one: the cells
// (projectionMemory, which counts them below their real footprint) plus the
// rest of the projection's state, buffers and the other services (1 GiB),
// with some room for garbage. At 10M benchmark events the heap reached the
// limit and the collector took most of the CPU (BENCHMARKS.md, "Memory").
// Without it the heap grows to twice its live data (GOGC=100), which with
// gigabytes of cells is gigabytes more than needed; with it the collector
// runs more often as the heap nears the limit. It reports the limit and
// whether it set it.
func goMemoryLimit(projectionMemory int) (int64, bool) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), false
	}
	limit := int64(projectionMemory)*5/2 + 1<<30
	debug.SetMemoryLimit(limit)
	return limit, true
}

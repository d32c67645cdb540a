package projection

import "sync/atomic"

// Memory is the budget for in-memory cells shared by every partition of
// every projection version of a process: a replay building a new version
// next to the live one shares it rather than doubling the process's
// memory. Usage is counted as the cells' encoded size plus a per-cell
// overhead (cellOverhead), which is below their real footprint: after 10M
// benchmark events, 3 GB counted came with 7.4–8.1 GB of heap in use (cells,
// dedupe and session state, garbage).
//
// A partition that commits while the budget is exceeded evicts the buckets
// it touched longest ago until it holds no more than three quarters of its
// share (the limit divided by the partitions running). The buckets come
// back from the store when events need them again.
type Memory struct {
	limit int64
	used  atomic.Int64
	peak  atomic.Int64
	parts atomic.Int64
}

// DefaultCellMemory is the budget of a Projector configured without one.
const DefaultCellMemory = 1 << 30

// NewMemory returns a budget of limit bytes.
func NewMemory(limit int64) *Memory {
	return &Memory{limit: max(limit, 1<<20)}
}

// Used is the cell memory counted against the budget.
func (m *Memory) Used() int64 { return m.used.Load() }

// Peak is the most cell memory counted at once.
func (m *Memory) Peak() int64 { return m.peak.Load() }

func (m *Memory) add(n int64) {
	used := m.used.Add(n)
	for {
		p := m.peak.Load()
		if used <= p || m.peak.CompareAndSwap(p, used) {
			return
		}
	}
}

func (m *Memory) join()                { m.parts.Add(1) }
func (m *Memory) leave(reported int64) { m.parts.Add(-1); m.used.Add(-reported) }

// target is how many bytes one partition may keep after evicting, or -1
// while the budget is not exceeded.
func (m *Memory) target() int64 {
	if m == nil || m.used.Load() <= m.limit {
		return -1
	}
	return m.limit / max(1, m.parts.Load()) / 4 * 3
}

package insights

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/sextant-analytics/sextant/pkg/analytics"
)

// maxWorkers bounds the goroutines one report decodes cells on, and
// parallelAfter is how many cells a report reads on the caller's goroutine
// before it spreads the rest over workers: small reports stay cheap, and
// only large ones pay for accumulators per worker.
const (
	maxWorkers    = 8
	parallelAfter = 8192
)

// options tune how a report runs (tests vary them).
type options struct {
	workers       int
	parallelAfter int
	money         Money
	// custom are the property's custom definitions by report name; nil
	// accepts any name.
	custom map[string]bool
}

func defaultOptions() options {
	return options{workers: min(runtime.GOMAXPROCS(0), maxWorkers), parallelAfter: parallelAfter}
}

// Batches hand cells to the workers; values are copied in, since a store may
// reuse a cell's buffer once its callback returns.
const (
	batchJobs  = 512
	batchBytes = 256 << 10
)

// merger decodes cells and merges them into their rows' accumulators. The
// caller's goroutine scans, filters and groups, and at first decodes and
// merges too. Past opts.parallelAfter cells, workers decode and merge
// batches of cells into accumulators of their own, which finish combines per
// row. Merging is commutative, so the answer does not depend on which worker
// saw which cell.
type merger struct {
	need    *analytics.Need
	opts    options
	cells   int
	workers []*worker // workers[0] is the caller's until the workers start

	// Once the workers run:
	work   chan *batch
	free   chan *batch
	cur    *batch
	wg     sync.WaitGroup
	failed atomic.Bool
	mu     sync.Mutex
	err    error
}

type worker struct {
	cv   analytics.Values
	accs []*analytics.Acc // by row index
}

type batch struct {
	buf  []byte
	rows []int32
	jobs []job
}

type job struct {
	bucket         int64
	valFrom, valTo int32
	rowFrom, rowTo int32
}

func newMerger(need *analytics.Need, opts options) *merger {
	return &merger{need: need, opts: opts, workers: []*worker{{}}}
}

// start moves decoding to the workers; worker 0 carries on with what the
// caller merged so far.
func (m *merger) start() {
	n := m.opts.workers
	m.work = make(chan *batch, 2*n)
	m.free = make(chan *batch, 3*n)
	m.cur = &batch{}
	for len(m.workers) < n {
		m.workers = append(m.workers, &worker{})
	}
	for _, w := range m.workers {
		m.wg.Add(1)
		go m.loop(w)
	}
}

func (m *merger) loop(w *worker) {
	defer m.wg.Done()
	for b := range m.work {
		if !m.failed.Load() {
			if err := w.process(b, m.need); err != nil {
				m.mu.Lock()
				if m.err == nil {
					m.err = err
				}
				m.mu.Unlock()
				m.failed.Store(true)
			}
		}
		b.buf, b.rows, b.jobs = b.buf[:0], b.rows[:0], b.jobs[:0]
		select {
		case m.free <- b:
		default:
		}
	}
}

func (w *worker) acc(row int32) *analytics.Acc {
	for int(row) >= len(w.accs) {
		w.accs = append(w.accs, nil)
	}
	a := w.accs[row]
	if a == nil {
		a = &analytics.Acc{}
		w.accs[row] = a
	}
	return a
}

func (w *worker) merge(value []byte, bucket int64, rows []int32, need *analytics.Need) error {
	if err := w.cv.Decode(value, need); err != nil {
		return fmt.Errorf("cell at %d: %w", bucket, err)
	}
	for _, r := range rows {
		if err := w.acc(r).Add(&w.cv, need); err != nil {
			return fmt.Errorf("cell at %d: %w", bucket, err)
		}
	}
	return nil
}

func (w *worker) process(b *batch, need *analytics.Need) error {
	for _, j := range b.jobs {
		if err := w.merge(b.buf[j.valFrom:j.valTo], j.bucket, b.rows[j.rowFrom:j.rowTo], need); err != nil {
			return err
		}
	}
	return nil
}

// add merges one cell's value into the accumulators of rows.
func (m *merger) add(value []byte, bucket int64, rows []int32) error {
	if m.work == nil {
		if m.opts.workers <= 1 || m.cells < m.opts.parallelAfter {
			m.cells++
			return m.workers[0].merge(value, bucket, rows, m.need)
		}
		m.start()
	}
	if m.failed.Load() {
		return m.firstErr()
	}
	b := m.cur
	j := job{bucket: bucket, valFrom: int32(len(b.buf)), rowFrom: int32(len(b.rows))}
	b.buf = append(b.buf, value...)
	b.rows = append(b.rows, rows...)
	j.valTo, j.rowTo = int32(len(b.buf)), int32(len(b.rows))
	b.jobs = append(b.jobs, j)
	if len(b.jobs) >= batchJobs || len(b.buf) >= batchBytes {
		m.dispatch()
	}
	return nil
}

func (m *merger) dispatch() {
	if len(m.cur.jobs) == 0 {
		return
	}
	m.work <- m.cur
	select {
	case m.cur = <-m.free:
	default:
		m.cur = &batch{}
	}
}

func (m *merger) firstErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// stop ends the workers; it is safe to call more than once.
func (m *merger) stop() {
	if m.work == nil {
		return
	}
	close(m.work)
	m.wg.Wait()
	m.work = nil
}

// finish merges the last cells and returns each row's finished accumulator.
func (m *merger) finish(rows int) ([]*analytics.Acc, error) {
	if m.work != nil {
		m.dispatch()
		m.stop()
		if err := m.firstErr(); err != nil {
			return nil, err
		}
	}
	out := make([]*analytics.Acc, rows)
	for _, w := range m.workers {
		for r, a := range w.accs {
			if a == nil {
				continue
			}
			if err := a.Finish(); err != nil {
				return nil, err
			}
			if out[r] == nil {
				out[r] = a
				continue
			}
			if err := out[r].Absorb(a); err != nil {
				return nil, err
			}
		}
	}
	for r := range out {
		if out[r] == nil {
			out[r] = &analytics.Acc{}
		}
	}
	return out, nil
}

package kafkalog

import "testing"

// TestReserve: the producer's buffer takes batches up to its limit, one
// batch larger than the limit when it is empty, and frees what a finished
// Append held.
func TestReserve(t *testing.T) {
	l := &Log{cfg: Config{MaxBufferedBytes: 100}}
	if !l.reserve(60) || l.reserve(60) || !l.reserve(40) {
		t.Fatalf("reserve 60, 60, 40: buffered %d", l.buffered.Load())
	}
	tr := &tracker{done: make(chan struct{}), bytes: 100, release: func(n int64) { l.buffered.Add(-n) }}
	tr.pending.Store(2)
	tr.finish(1, nil)
	if l.buffered.Load() != 100 {
		t.Fatalf("released before the last message: %d", l.buffered.Load())
	}
	tr.finish(1, nil)
	if l.buffered.Load() != 0 || !l.reserve(500) {
		t.Fatalf("after the append: buffered %d", l.buffered.Load())
	}
}

// Package diskspace keeps an embedded store from filling its disk. A
// store that runs out of space in the middle of a write cannot continue
// (Pebble stops the process on a failed WAL write, so that it never
// acknowledges what it could not store): refusing new writes while the
// filesystem has less than a reserve free turns a full disk into
// "unavailable, retry later" answers instead of a crash.
package diskspace

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// ErrLow is in the chain of Check's error when the free space is below
// the reserve.
var ErrLow = errors.New("free disk space below the reserve")

// refresh is how long a measurement is reused.
const refresh = 250 * time.Millisecond

// Guard checks the free space of the filesystem holding a directory.
type Guard struct {
	dir     string
	reserve int64
	statfs  func(dir string) (free int64, err error)

	mu   sync.Mutex
	at   time.Time
	free int64
	err  error
}

// New returns a Guard of dir that fails once fewer than reserve bytes are
// free for unprivileged writers. A reserve <= 0 never fails.
func New(dir string, reserve int64) *Guard {
	return &Guard{dir: dir, reserve: reserve, statfs: freeBytes}
}

// Check returns nil while the reserve is free, else an error wrapping
// ErrLow that says how much is free. It measures at most every 250 ms.
// A failed measurement does not fail the check (the write itself will
// report a real problem).
func (g *Guard) Check() error {
	if g == nil || g.reserve <= 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := time.Now(); now.Sub(g.at) >= refresh {
		g.at = now
		g.free, g.err = g.statfs(g.dir)
	}
	if g.err != nil || g.free >= g.reserve {
		return nil
	}
	return fmt.Errorf("%s: %d MiB free, %d MiB kept in reserve: %w", g.dir, g.free>>20, g.reserve>>20, ErrLow)
}

func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

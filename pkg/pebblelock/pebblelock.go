// Package pebblelock takes the lock of a Pebble database's directory
// before the database is opened, so that a directory another opener holds
// is told from other failures by a sentinel, ErrInUse: Pebble itself
// reports it as a bare errno from fcntl (another process) or as an
// untyped error (this process).
package pebblelock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrInUse is the error of Acquire when another process, or another
// opener in this process, holds the directory.
var ErrInUse = errors.New("directory in use")

// held are the directories locked by this process, by absolute path.
var held = struct {
	mu   sync.Mutex
	dirs map[string]bool
}{dirs: map[string]bool{}}

// Lock is a held directory lock: pass Pebble() as pebble.Options.Lock,
// and Close it after the database.
type Lock struct {
	abs string
	pl  *pebble.Lock
}

// Acquire creates dir if needed and locks it.
func Acquire(dir string) (*Lock, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	held.mu.Lock()
	defer held.mu.Unlock()
	if held.dirs[abs] {
		return nil, fmt.Errorf("lock %s: %w (by this process)", dir, ErrInUse)
	}
	pl, err := pebble.LockDirectory(dir, vfs.Default)
	if err != nil {
		if heldElsewhere(err) {
			return nil, fmt.Errorf("lock %s: %w (by another process: %w)", dir, ErrInUse, err)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	held.dirs[abs] = true
	return &Lock{abs: abs, pl: pl}, nil
}

// heldElsewhere reports the error of fcntl(F_SETLK) on a lock another
// process holds: EAGAIN or EACCES, bare (creating the lock file fails
// with an *fs.PathError instead, e.g. EACCES on a read-only directory).
func heldElsewhere(err error) bool {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return false
	}
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES)
}

// Pebble is the lock for pebble.Options.Lock.
func (l *Lock) Pebble() *pebble.Lock { return l.pl }

// Close releases the lock; the database that used it must be closed
// first. Closing it again does nothing.
func (l *Lock) Close() error {
	held.mu.Lock()
	defer held.mu.Unlock()
	if l.pl == nil {
		return nil
	}
	delete(held.dirs, l.abs)
	pl := l.pl
	l.pl = nil
	return pl.Close()
}

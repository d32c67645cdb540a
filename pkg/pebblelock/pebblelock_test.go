package pebblelock_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sextant-analytics/sextant/pkg/pebblelock"
)

// holdEnv makes the test binary a process that holds a directory's lock
// until its standard input closes.
const holdEnv = "PEBBLELOCK_TEST_HOLD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(holdEnv); dir != "" {
		l, err := pebblelock.Acquire(dir)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("held")
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = l.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestInUseByThisProcess: a directory locked here is ErrInUse until its
// lock is closed, and a database opens with the lock.
func TestInUseByThisProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	l, err := pebblelock.Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open(dir, &pebble.Options{Lock: l.Pebble()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pebblelock.Acquire(dir); !errors.Is(err, pebblelock.ErrInUse) {
		t.Fatalf("second Acquire: %v, want ErrInUse", err)
	}
	if _, err := pebblelock.Acquire(dir + "/."); !errors.Is(err, pebblelock.ErrInUse) {
		t.Fatalf("Acquire of the same directory spelt otherwise: %v, want ErrInUse", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	l, err = pebblelock.Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Close: %v", err)
	}
	_ = l.Close()
}

// TestInUseByAnotherProcess: the real condition of two sextant processes
// on one data directory.
func TestInUseByAnotherProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "held" {
		t.Fatalf("the holding process said %q, %v", line, err)
	}
	_, err = pebblelock.Acquire(dir)
	if !errors.Is(err, pebblelock.ErrInUse) || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("Acquire of a directory another process holds: %v, want ErrInUse", err)
	}
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	l, err := pebblelock.Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire once the other process let go: %v", err)
	}
	_ = l.Close()
}

// TestOtherFailuresAreNotInUse: a directory that cannot be made is an
// error, but not ErrInUse.
func TestOtherFailuresAreNotInUse(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{filepath.Join(file, "db")} {
		if _, err := pebblelock.Acquire(dir); err == nil || errors.Is(err, pebblelock.ErrInUse) {
			t.Errorf("Acquire(%s): %v, want an error other than ErrInUse", dir, err)
		}
	}
}

package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

func TestParseServeRejects(t *testing.T) {
	// The flags fall back to SEXTANT_* variables (test.sh sets the stack's):
	// the cases assume none is set.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SEXTANT_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for _, tc := range []struct {
		args []string
		want string // in the error; "" for none
	}{
		{nil, ""},
		{[]string{"--projection-memory", "67108864"}, ""},
		{[]string{"--projection-memory", "1000"}, "--projection-memory"},
		{[]string{"--services", "insights", "--kafka-brokers", "k:9092", "--projection-memory", "1000"}, ""},
		{[]string{"--flush-interval", "2m"}, "--flush-interval"},
		{[]string{"--max-batch-events", "0"}, "--max-batch-events"},
		{[]string{"--services", "collect"}, "--services"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseServe(tc.args, io.Discard)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestMemTotal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"MemTotal:       24684136 kB\nMemFree:         6838580 kB\n", 24684136 << 10},
		{"MemFree:         6838580 kB\nMemTotal:    1024 kB\n", 1 << 20},
		{"MemFree:         6838580 kB\n", 0},
		{"MemTotal: lots kB\n", 0},
	} {
		if got := memTotal(strings.NewReader(tc.in)); got != tc.want {
			t.Errorf("memTotal(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	if n := defaultProjectionMemory(); n < 256<<20 {
		t.Errorf("default projection memory %d, below the 256 MiB floor", n)
	}
}

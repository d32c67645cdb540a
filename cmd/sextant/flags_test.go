package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestBadEnvironmentValues: an environment value that does not parse
// fails the command with an error naming the variable and the value,
// instead of falling back to the default; the flag given on the command
// line wins over it.
func TestBadEnvironmentValues(t *testing.T) {
	for _, tc := range []struct {
		env, value string
		args       []string // the command, serve when empty
	}{
		{"SEXTANT_FLUSH_INTERVAL", "100", nil},          // a duration without its unit
		{"SEXTANT_SHUTDOWN_GRACE", "soon", nil},         // Duration
		{"SEXTANT_COLLECT_BURST", "1e5", nil},           // IntVar
		{"SEXTANT_PARTITIONS", "four", nil},             // IntVar
		{"SEXTANT_COLLECT_RATE", "fast", nil},           // Float
		{"SEXTANT_DEMO", "yes", nil},                    // Bool
		{"SEXTANT_WATERMARK_REFRESH", "sometimes", nil}, // AutoDuration
		{"SEXTANT_CACHE_BYTES", "64 parsecs", nil},      // BytesVar
		{"SEXTANT_MAX_BODY_BYTES", "-1", nil},           // BytesVar, out of range
		{"SEXTANT_KAFKA_PARTITIONS", "12.5", []string{"kafka", "init", "--kafka-brokers", "b:9092"}},
		{"SEXTANT_JSON", "maybe", []string{"property", "get", "p1"}},               // flags after a positional
		{"SEXTANT_GRACE", "1d", []string{"property", "key", "rotate", "p1", "k1"}}, // Duration, interleaved
		{"SEXTANT_WATCH", "2", []string{"projection", "replay", "traffic", "--logic", "v2"}},
	} {
		t.Run(tc.env, func(t *testing.T) {
			clearSextantEnv(t)
			t.Setenv("SEXTANT_CONFIG", t.TempDir()+"/config.json")
			t.Setenv(tc.env, tc.value)
			var err error
			if tc.args == nil {
				_, err = parseServe(nil, io.Discard)
			} else {
				err = dispatch(context.Background(), tc.args, io.Discard, io.Discard)
			}
			if err == nil || !strings.Contains(err.Error(), tc.env+`="`+tc.value+`"`) {
				t.Fatalf("%s=%s: %v, want an error naming the variable and its value", tc.env, tc.value, err)
			}
		})
	}
}

// TestEnvironmentValuesParse: good values are taken, an empty one is
// unset, and a flag on the command line wins over a bad value.
func TestEnvironmentValuesParse(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want func(serveConfig) bool
	}{
		{map[string]string{"SEXTANT_FLUSH_INTERVAL": "250ms"}, nil, func(c serveConfig) bool { return c.FlushInterval == 250*time.Millisecond }},
		{map[string]string{"SEXTANT_FLUSH_INTERVAL": ""}, nil, func(c serveConfig) bool { return c.FlushInterval == 100*time.Millisecond }},
		{map[string]string{"SEXTANT_FLUSH_INTERVAL": "100"}, []string{"--flush-interval", "50ms"}, func(c serveConfig) bool { return c.FlushInterval == 50*time.Millisecond }},
		{map[string]string{"SEXTANT_CACHE_BYTES": "32MiB", "SEXTANT_DEMO": "false"}, nil, func(c serveConfig) bool { return c.Engines.CacheBytes == 32<<20 && c.Demo == demoOff }},
		{map[string]string{"SEXTANT_WATERMARK_REFRESH": "auto"}, nil, func(c serveConfig) bool { return c.WatermarkRefresh == 0 }},
	} {
		clearSextantEnv(t)
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		c, err := parseServe(tc.args, io.Discard)
		if err != nil || !tc.want(c) {
			t.Errorf("env %v, args %v: %+v, %v", tc.env, tc.args, c, err)
		}
	}
}

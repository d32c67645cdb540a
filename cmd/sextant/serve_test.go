package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
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
		{[]string{"--services", "insights", "--kafka-brokers", "k:9092"}, ""},
		{[]string{"--flush-interval", "2m"}, "--flush-interval"},
		{[]string{"--max-batch-events", "0"}, "--max-batch-events"},
		{[]string{"--min-free-disk-mb", "-1"}, "--min-free-disk-mb"},
		{[]string{"--collect-burst", "5"}, "--collect-burst (5) must be at least --max-batch-events (500)"},
		{[]string{"--collect-burst", "5", "--max-batch-events", "5"}, ""},
		{[]string{"--services", "collect"}, "--services"},
		{[]string{"--geoip", "off"}, ""},
		{[]string{"--geoip", "maybe"}, "--geoip"},
		{[]string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key"},
		{[]string{"--tls-client-ca", "ca.pem"}, "--tls-client-ca needs --tls-cert"},
		{[]string{"--backend-tls-ca", "ca.pem"}, "the gateway's"},
		{[]string{"--services", "gateway", "--insights-backends", "i:1", "--backend-tls-cert", "c.pem"}, "--backend-tls-cert and --backend-tls-key"},
		{[]string{"--services", "gateway", "--insights-backends", "i:1", "--backend-tls-ca", "ca.pem"}, ""},
		{[]string{"--kafka-tls-ca", "ca.pem"}, "need --kafka-brokers"},
		{[]string{"--cql-hosts", "c:9042", "--cql-tls-key", "k.pem"}, "--cql-tls-cert and --cql-tls-key"},
		{[]string{"--redis-tls-ca", "ca.pem"}, "need --redis-addr"},
		{[]string{"--start-version", "v6"}, ""},
		{[]string{"--start-version", "v99"}, "--start-version v99: no such version"},
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

// TestServeBindsFirst: an address in use fails serve before it creates
// or prints anything (the demo property's keys were printed, then lost).
func TestServeBindsFirst(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SEXTANT_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := filepath.Join(t.TempDir(), "data")
	var stdout, stderr bytes.Buffer
	err = serve(context.Background(), []string{"--addr", ln.Addr().String(), "--data-dir", dir, "--geoip=off"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "listen on --addr "+ln.Addr().String()) {
		t.Fatalf("serve on an address in use: %v, want a listen error naming --addr", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("serve printed before failing to bind: %q", stdout.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("serve created its data directory before failing to bind (%v)", err)
	}
}

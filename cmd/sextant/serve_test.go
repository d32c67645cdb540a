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

	"github.com/sextant-analytics/sextant/pkg/demo"
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
		{[]string{"--demo"}, ""},
		{[]string{"--demo=false"}, ""},
		{[]string{"--demo", "--demo-days", "30", "--start-version", "v1"}, ""},
		{[]string{"--demo", "--demo-days", "0"}, "--demo-days"},
		{[]string{"--demo", "--demo-days", "91"}, "--demo-days"},
		{[]string{"--demo", "--services", "insights", "--kafka-brokers", "k:9092"}, "--demo sends its traffic through this process's collect"},
		{[]string{"--demo=maybe"}, "usage"}, // the flag package says why, on stderr
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

// TestParseServeDemo: --demo fills the demo property (a new store then
// starts with v6 unless told), no flag only creates it, --demo=false
// neither; SEXTANT_DEMO says the same.
func TestParseServeDemo(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SEXTANT_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for _, tc := range []struct {
		args    []string
		env     string
		mode    demoMode
		version string
	}{
		{nil, "", demoCreate, ""},
		{[]string{"--demo"}, "", demoTraffic, "v6"},
		{[]string{"--demo", "--start-version", "v2"}, "", demoTraffic, "v2"},
		{[]string{"--demo=false"}, "", demoOff, ""},
		{nil, "false", demoOff, ""},
		{nil, "true", demoTraffic, "v6"},
		{[]string{"--demo=false"}, "true", demoOff, ""},
	} {
		t.Run(strings.Join(tc.args, " ")+" SEXTANT_DEMO="+tc.env, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("SEXTANT_DEMO", tc.env)
			}
			c, err := parseServe(tc.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if c.Demo != tc.mode || c.StartVersion != tc.version {
				t.Errorf("demo %q, start version %q; want %q, %q", c.Demo, c.StartVersion, tc.mode, tc.version)
			}
			if c.Demo == demoTraffic && (c.DemoTraffic.Days != demo.Defaults().Days || c.DemoTraffic.Rate != c.CollectRate) {
				t.Errorf("demo traffic %+v", c.DemoTraffic)
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

package cache

import (
	"context"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/tlsfiles"
	"github.com/sextant-analytics/sextant/pkg/tlsfiles/tlsfilestest"
)

// TestRedisTLS runs a redis-server of its own that speaks TLS only and
// requires client certificates: the cache reaches it with the CA and a
// client certificate, and not without them. Skipped without redis-server.
func TestRedisTLS(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("no redis-server")
	}
	ca := tlsfilestest.NewCA(t, "ca")
	srv := ca.Issue(t, "redis", "127.0.0.1")
	client := ca.Issue(t, "client")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	cmd := exec.Command(bin, "--port", "0", "--tls-port", port, "--bind", "127.0.0.1",
		"--tls-cert-file", srv.CertFile, "--tls-key-file", srv.KeyFile,
		"--tls-ca-cert-file", ca.CertFile, "--tls-auth-clients", "yes",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	ctx := context.Background()
	mTLS, err := tlsfiles.Files{CA: ca.CertFile, Cert: client.CertFile, Key: client.KeyFile}.ClientConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRedis(addr, mTLS)
	defer r.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err = r.Ping(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis over TLS with a client certificate: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := r.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := r.Get(ctx, "k"); !ok || err != nil || string(v) != "v" {
		t.Fatalf("Get over TLS: %q %v %v", v, ok, err)
	}

	caOnly, err := tlsfiles.Files{CA: ca.CertFile}.ClientConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*Redis{
		"without a client certificate": NewRedis(addr, caOnly),
		"in cleartext":                 NewRedis(addr, nil),
	} {
		if err := c.Ping(ctx); err == nil {
			t.Errorf("%s, Redis answered", name)
		}
		c.Close()
	}
}

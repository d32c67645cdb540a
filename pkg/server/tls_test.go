package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sextant-analytics/sextant/pkg/tlsfiles"
	"github.com/sextant-analytics/sextant/pkg/tlsfiles/tlsfilestest"
)

// TestTLS: with Config.TLS the address serves HTTPS only: HTTP/1.1 for
// REST and HTTP/2 for gRPC by ALPN; a cleartext client is refused; a
// client without a certificate is refused when the server requires one.
func TestTLS(t *testing.T) {
	ca := tlsfilestest.NewCA(t, "ca")
	pair := ca.Issue(t, "server", "127.0.0.1")
	client := ca.Issue(t, "client")
	roots, err := tlsfiles.CertPool(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	echo := []Service{{
		Name:  "test.v1.Echo",
		Mount: func(...connect.HandlerOption) (string, http.Handler) { return "/test.v1.Echo/", http.NotFoundHandler() },
	}}
	start := func(files tlsfiles.Files) *Server {
		t.Helper()
		cfg, err := files.ServerConfig(nil)
		if err != nil {
			t.Fatal(err)
		}
		srv := New(Config{Addr: "127.0.0.1:0", TLS: cfg}, echo, nil)
		serveTest(t, srv)
		return srv
	}
	health := func(addr string, creds credentials.TransportCredentials) error {
		conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "test.v1.Echo"})
		if err == nil && resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %v", resp.Status)
		}
		return err
	}

	srv := start(tlsfiles.Files{Cert: pair.CertFile, Key: pair.KeyFile})
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := https.Get("https://" + srv.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" || resp.Proto != "HTTP/1.1" || resp.TLS == nil {
		t.Fatalf("REST over TLS: %s %d %q", resp.Proto, resp.StatusCode, body)
	}
	if err := health(srv.Addr(), credentials.NewTLS(&tls.Config{RootCAs: roots})); err != nil {
		t.Fatalf("gRPC over TLS: %v", err)
	}
	if resp, err := http.Get("http://" + srv.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("a cleartext REST client was answered")
		}
	}
	if err := health(srv.Addr(), insecure.NewCredentials()); err == nil {
		t.Fatal("a cleartext gRPC client was answered")
	}

	// Mutual TLS: a client certificate signed by the CA, or no answer.
	srv = start(tlsfiles.Files{CA: ca.CertFile, Cert: pair.CertFile, Key: pair.KeyFile})
	if err := health(srv.Addr(), credentials.NewTLS(&tls.Config{RootCAs: roots})); err == nil {
		t.Fatal("a gRPC client without a certificate was answered")
	}
	withCert, err := tlsfiles.Files{CA: ca.CertFile, Cert: client.CertFile, Key: client.KeyFile}.ClientConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := health(srv.Addr(), credentials.NewTLS(withCert)); err != nil {
		t.Fatalf("gRPC with a client certificate: %v", err)
	}
	other := tlsfilestest.NewCA(t, "other").Issue(t, "stranger")
	foreign, err := tlsfiles.Files{CA: ca.CertFile, Cert: other.CertFile, Key: other.KeyFile}.ClientConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := health(srv.Addr(), credentials.NewTLS(foreign)); err == nil {
		t.Fatal("a client certificate of another CA was accepted")
	}
}

// TestSelf: the in-process connection reaches the server's handlers over
// cleartext while the public address serves TLS only and asks for client
// certificates; a call made before Serve waits for it.
func TestSelf(t *testing.T) {
	ca := tlsfilestest.NewCA(t, "ca")
	pair := ca.Issue(t, "server", "127.0.0.1")
	cfg, err := tlsfiles.Files{Cert: pair.CertFile, Key: pair.KeyFile, CA: ca.CertFile}.ServerConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	echo := []Service{{
		Name:  "test.v1.Echo",
		Mount: func(...connect.HandlerOption) (string, http.Handler) { return "/test.v1.Echo/", http.NotFoundHandler() },
	}}
	srv := New(Config{Addr: "127.0.0.1:0", TLS: cfg}, echo, nil)
	conn, err := srv.Self()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	answer := make(chan error, 1)
	go func() {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "test.v1.Echo"})
		if err == nil && resp.Status != healthpb.HealthCheckResponse_SERVING {
			err = fmt.Errorf("health %v", resp.Status)
		}
		answer <- err
	}()
	time.Sleep(50 * time.Millisecond)
	serveTest(t, srv)
	if err := <-answer; err != nil {
		t.Fatalf("health check over Self: %v", err)
	}
}

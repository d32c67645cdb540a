package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	adminv1 "github.com/sextant-analytics/sextant/gen/sextant/admin/v1"
	"github.com/sextant-analytics/sextant/pkg/tlsfiles"
	"github.com/sextant-analytics/sextant/pkg/tlsfiles/tlsfilestest"
)

// TestServeTLS: `serve --tls-cert --tls-key` (embedded) answers REST over
// HTTPS (HTTP/1.1, and HTTP/2 to clients that offer it), gRPC over TLS and
// the REST gateway's streaming calls; cleartext clients are refused; a
// renewed certificate written over the files is served without a restart.
func TestServeTLS(t *testing.T) {
	skipShort(t)
	ca := tlsfilestest.NewCA(t, "ca")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	first := ca.IssueTo(t, certFile, keyFile, "server", "127.0.0.1")
	roots, err := tlsfiles.CertPool(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	srv := launchServer(t, t.TempDir(), addr, "--tls-cert", certFile, "--tls-key", keyFile)
	https := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	srv.waitReady(t, https, "https://"+addr)
	if !strings.Contains(srv.stdout.String(), "on https://"+addr) {
		t.Errorf("serve printed:\n%s", srv.stdout.String())
	}
	keys := demoKeys(t, srv.stdout.String())
	admin := keys["SEXTANT_ADMIN_KEY"]

	get := func(c *http.Client, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get(https, "/v1/properties")
	if resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" || !strings.Contains(body, keys["SEXTANT_PROPERTY_ID"]) {
		t.Fatalf("REST over HTTPS: %s %d %s", resp.Proto, resp.StatusCode, body)
	}
	h2 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: roots}}}
	if resp, body := get(h2, "/v1/properties"); resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
		t.Fatalf("REST over HTTP/2: %s %d %s", resp.Proto, resp.StatusCode, body)
	}
	// A server-streaming call through REST: the gateway dials the server
	// itself for it.
	if resp, body := get(https, "/v1/projections/traffic/versions/v1:watch"); resp.StatusCode != 200 || !strings.Contains(body, `"traffic"`) {
		t.Fatalf("streaming REST over HTTPS: %d %s", resp.StatusCode, body)
	}

	list := func(creds credentials.TransportCredentials) error {
		conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+admin)
		out, err := adminv1.NewAdminServiceClient(conn).ListProperties(ctx, &adminv1.ListPropertiesRequest{})
		if err == nil && len(out.Properties) != 1 {
			t.Fatalf("gRPC ListProperties: %v", out)
		}
		return err
	}
	if err := list(credentials.NewTLS(&tls.Config{RootCAs: roots})); err != nil {
		t.Fatalf("gRPC over TLS: %v", err)
	}
	if err := list(insecure.NewCredentials()); err == nil {
		t.Fatal("a cleartext gRPC client was answered")
	}
	if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("a cleartext REST client was answered")
		}
	}

	// Renewal: new files, the same process.
	served := func() []byte {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Raw
	}
	if !bytes.Equal(served(), first.Cert.Raw) {
		t.Fatal("not the first certificate")
	}
	second := ca.IssueTo(t, certFile, keyFile, "server", "127.0.0.1")
	deadline := time.Now().Add(10 * time.Second)
	for !bytes.Equal(served(), second.Cert.Raw) {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate is not served 10 s after it was written")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := list(credentials.NewTLS(&tls.Config{RootCAs: roots})); err != nil {
		t.Fatalf("gRPC after the renewal: %v", err)
	}
	select {
	case err := <-srv.done:
		t.Fatalf("the server exited: %v", err)
	default:
	}
	srv.stop(t)
}

// TestREADMETLS runs the README's `sh tls` block, in a directory of its own
// instead of tls-demo and on a free port, and compares its output with the
// README's.
func TestREADMETLS(t *testing.T) {
	skipShort(t)
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	blocks := withTag(readmeExamples(t), "tls")
	if len(blocks) != 1 {
		t.Fatalf("want one `sh tls` block in the README, found %d", len(blocks))
	}
	ex := blocks[0]
	dir := t.TempDir()
	script := strings.ReplaceAll(ex.script, "127.0.0.1:8443", freeAddr(t))
	if !strings.Contains(script, "tls-demo") {
		t.Fatal("the `sh tls` block no longer works in tls-demo")
	}
	script = strings.ReplaceAll(script, "tls-demo", dir)
	out, stderr, err := runScript(t, script, append(embeddedEnv(), "PATH="+grpcurlDir(t)+string(os.PathListSeparator)+os.Getenv("PATH")), 3*time.Minute, "the `sh tls` block")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
		t.Fatalf("README line %d failed: %v\n%s\n%s\nserve.log:\n%s", ex.line, err, out, stderr, log)
	}
	if err := compare(ex, string(out)); err != nil {
		t.Fatalf("README line %d: %v; got:\n%s", ex.line, err, out)
	}
}

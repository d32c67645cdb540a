package tlsfiles_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/tlsfiles"
	"github.com/sextant-analytics/sextant/pkg/tlsfiles/tlsfilestest"
)

func TestKeyPairReloads(t *testing.T) {
	ca := tlsfilestest.NewCA(t, "ca")
	first := ca.Issue(t, "server", "localhost")
	kp, err := tlsfiles.LoadKeyPair(first.CertFile, first.KeyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	kp.CheckEvery = 50 * time.Millisecond
	if got := kp.Certificate(); !bytes.Equal(got.Certificate[0], first.Cert.Raw) {
		t.Fatal("not the first certificate")
	}
	second := ca.IssueTo(t, first.CertFile, first.KeyFile, "server", "localhost")
	// Not before CheckEvery: the files are looked at that rarely.
	if got := kp.Certificate(); !bytes.Equal(got.Certificate[0], first.Cert.Raw) {
		t.Fatal("the files were looked at before CheckEvery")
	}
	time.Sleep(60 * time.Millisecond)
	if got := kp.Certificate(); !bytes.Equal(got.Certificate[0], second.Cert.Raw) {
		t.Fatal("the renewed certificate was not read")
	}

	// A certificate whose key is not written yet: the previous pair is
	// kept, and the new one read once its key is there.
	third := ca.Issue(t, "other", "localhost")
	certPEM, err := os.ReadFile(third.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(first.CertFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	if got := kp.Certificate(); !bytes.Equal(got.Certificate[0], second.Cert.Raw) {
		t.Fatal("a mismatched pair replaced the certificate")
	}
	keyPEM, err := os.ReadFile(third.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(first.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	if got := kp.Certificate(); !bytes.Equal(got.Certificate[0], third.Cert.Raw) {
		t.Fatal("the pair was not read once its key was written")
	}
}

func TestClientConfig(t *testing.T) {
	ca := tlsfilestest.NewCA(t, "ca")
	client := ca.Issue(t, "client")
	if c, err := (tlsfiles.Files{}).ClientConfig(nil); c != nil || err != nil {
		t.Fatalf("no files: %v, %v; want no TLS", c, err)
	}
	c, err := tlsfiles.Files{CA: ca.CertFile, Cert: client.CertFile, Key: client.KeyFile}.ClientConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Cert.Verify(x509VerifyOptions(c)); err != nil {
		t.Fatalf("the roots do not hold the CA: %v", err)
	}
	got, err := c.GetClientCertificate(&tls.CertificateRequestInfo{})
	if err != nil || !bytes.Equal(got.Certificate[0], client.Cert.Raw) {
		t.Fatalf("client certificate %v, %v", got, err)
	}
	// A CA alone: TLS, no client certificate.
	c, err = tlsfiles.Files{CA: ca.CertFile}.ClientConfig(nil)
	if err != nil || c == nil || c.RootCAs == nil || c.GetClientCertificate != nil {
		t.Fatalf("CA alone: %+v, %v", c, err)
	}
	if _, err := (tlsfiles.Files{Cert: client.CertFile}).ClientConfig(nil); err == nil {
		t.Fatal("a certificate without its key was accepted")
	}
	if _, err := (tlsfiles.Files{CA: client.KeyFile}).ClientConfig(nil); err == nil {
		t.Fatal("a CA file without certificates was accepted")
	}
}

func TestServerConfig(t *testing.T) {
	ca := tlsfilestest.NewCA(t, "ca")
	server := ca.Issue(t, "server", "127.0.0.1")
	c, err := tlsfiles.Files{Cert: server.CertFile, Key: server.KeyFile}.ServerConfig(nil)
	if err != nil || c.ClientAuth != tls.NoClientCert || c.GetCertificate == nil {
		t.Fatalf("%+v, %v", c, err)
	}
	c, err = tlsfiles.Files{CA: ca.CertFile, Cert: server.CertFile, Key: server.KeyFile}.ServerConfig(nil)
	if err != nil || c.ClientAuth != tls.RequireAndVerifyClientCert || c.ClientCAs == nil {
		t.Fatalf("with a client CA: %+v, %v", c, err)
	}
	if _, err := (tlsfiles.Files{CA: ca.CertFile}).ServerConfig(nil); err == nil {
		t.Fatal("a client CA without a certificate was accepted")
	}
}

func x509VerifyOptions(c *tls.Config) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: c.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
}

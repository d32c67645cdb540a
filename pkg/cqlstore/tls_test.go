package cqlstore

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/tlsfiles"
	"github.com/sextant-analytics/sextant/pkg/tlsfiles/tlsfilestest"
)

// TestClusterTLS: Config.TLS gives the driver TLS with host verification
// (gocql skips it otherwise), the CA's roots and the client certificate.
// No TLS-enabled cluster is tested against.
func TestClusterTLS(t *testing.T) {
	ca := tlsfilestest.NewCA(t, "ca")
	client := ca.Issue(t, "client")
	tc, err := tlsfiles.Files{CA: ca.CertFile, Cert: client.CertFile, Key: client.KeyFile}.ClientConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, withTLS := range []bool{false, true} {
		cfg := Config{Hosts: []string{"db1:9142"}}
		if withTLS {
			cfg.TLS = tc
		}
		s, err := cfg.settings()
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.cluster("", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !withTLS {
			if c.SslOpts != nil {
				t.Fatal("TLS without Config.TLS")
			}
			continue
		}
		if c.SslOpts == nil || !c.SslOpts.EnableHostVerification || c.SslOpts.Config != tc {
			t.Fatalf("SslOpts %+v, want the config with host verification", c.SslOpts)
		}
		if _, err := client.Cert.Verify(verifyOptions(c.SslOpts.Config)); err != nil {
			t.Fatalf("the roots do not hold the CA: %v", err)
		}
		cert, err := c.SslOpts.Config.GetClientCertificate(&tls.CertificateRequestInfo{})
		if err != nil || cert == nil || len(cert.Certificate) == 0 {
			t.Fatalf("client certificate: %v", err)
		}
	}
}

func verifyOptions(c *tls.Config) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: c.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
}

package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/kafkalog"
	"github.com/sextant-analytics/sextant/pkg/tlsfiles/tlsfilestest"
)

// TestEngineTLSFlags: --kafka-tls-* and --cql-tls-* give the Kafka and CQL
// configurations a TLS config that trusts the CA and presents the client
// certificate, and sarama's config TLS on; without them, none. (No
// TLS-enabled Kafka or Cassandra is tested against; Redis is, in
// pkg/cache.)
func TestEngineTLSFlags(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SEXTANT_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	ca := tlsfilestest.NewCA(t, "ca")
	client := ca.Issue(t, "client")
	other := tlsfilestest.NewCA(t, "other")
	cfg, err := parseServe([]string{
		"--kafka-brokers", "broker:9093", "--kafka-tls-ca", ca.CertFile, "--kafka-tls-cert", client.CertFile, "--kafka-tls-key", client.KeyFile,
		"--cql-hosts", "db:9142", "--cql-tls-ca", ca.CertFile,
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	kc, err := cfg.Engines.kafkaConfig(logger)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cfg.Engines.cqlConfig(logger)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]*tls.Config{"kafka": kc.TLS, "cql": cc.TLS} {
		if tc == nil {
			t.Fatalf("%s: no TLS", name)
		}
		if _, err := client.Cert.Verify(x509.VerifyOptions{Roots: tc.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s: the roots do not hold the CA: %v", name, err)
		}
		if _, err := other.Cert().Verify(x509.VerifyOptions{Roots: tc.RootCAs}); err == nil {
			t.Errorf("%s: the roots hold another CA", name)
		}
	}
	cert, err := kc.TLS.GetClientCertificate(&tls.CertificateRequestInfo{})
	if err != nil || !bytes.Equal(cert.Certificate[0], client.Cert.Raw) {
		t.Errorf("kafka: client certificate %v, %v", cert, err)
	}
	if cc.TLS.GetClientCertificate != nil {
		t.Error("cql: a client certificate without --cql-tls-cert")
	}
	producer, _, err := kafkalog.SaramaConfigs(kc)
	if err != nil || !producer.Net.TLS.Enable || producer.Net.TLS.Config != kc.TLS {
		t.Errorf("sarama: TLS %v, %v", producer.Net.TLS.Enable, err)
	}
	if !strings.Contains(cfg.Engines.describe(), "broker:9093 over TLS") {
		t.Errorf("describe: %s", cfg.Engines.describe())
	}

	cfg, err = parseServe([]string{"--kafka-brokers", "broker:9092", "--cql-hosts", "db:9042"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	kc, _ = cfg.Engines.kafkaConfig(logger)
	cc, _ = cfg.Engines.cqlConfig(logger)
	if kc.TLS != nil || cc.TLS != nil {
		t.Error("TLS without TLS flags")
	}

	cfg, err = parseServe([]string{"--kafka-brokers", "broker:9093", "--kafka-tls-ca", client.KeyFile}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Engines.kafkaConfig(logger); err == nil || !strings.Contains(err.Error(), "--kafka-tls") {
		t.Errorf("a CA file without certificates: %v", err)
	}
}

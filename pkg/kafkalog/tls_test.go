package kafkalog_test

import (
	"testing"

	"github.com/sextant-analytics/sextant/pkg/kafkalog"
	"github.com/sextant-analytics/sextant/pkg/tlsfiles"
	"github.com/sextant-analytics/sextant/pkg/tlsfiles/tlsfilestest"
)

// TestTLSConfig: Config.TLS turns sarama's Net.TLS on, with that config,
// for the producer and the consumer. No TLS-enabled broker is tested
// against.
func TestTLSConfig(t *testing.T) {
	ca := tlsfilestest.NewCA(t, "ca")
	client := ca.Issue(t, "client")
	tc, err := tlsfiles.Files{CA: ca.CertFile, Cert: client.CertFile, Key: client.KeyFile}.ClientConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, c, err := kafkalog.SaramaConfigs(kafkalog.Config{Brokers: []string{"broker:9093"}, TLS: tc})
	if err != nil {
		t.Fatal(err)
	}
	for name, ok := range map[string]bool{"producer": p.Net.TLS.Enable && p.Net.TLS.Config == tc, "consumer": c.Net.TLS.Enable && c.Net.TLS.Config == tc} {
		if !ok {
			t.Errorf("the %s does not use TLS with the config", name)
		}
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("sarama rejects the producer config: %v", err)
	}
	p, _, err = kafkalog.SaramaConfigs(kafkalog.Config{Brokers: []string{"broker:9092"}})
	if err != nil || p.Net.TLS.Enable {
		t.Fatalf("without Config.TLS: TLS %v, %v", p.Net.TLS.Enable, err)
	}
}

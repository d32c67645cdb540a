// Package tlsfiles builds TLS configurations from PEM files: a listener's
// certificate, read again when its files change, the CA that clients'
// certificates must be signed by, and the CA and certificate a client
// trusts and presents (Kafka, CQL, Redis, the gateway's backends).
package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultCheckEvery is how often, at most, a KeyPair looks at its files.
const DefaultCheckEvery = 2 * time.Second

// KeyPair is a certificate and its private key read from PEM files, read
// again when either file changes (a renewed certificate is served without a
// restart). The files are looked at, by their size and modification time,
// at most every CheckEvery, when a handshake asks for the certificate. A
// pair that does not load (the certificate written but not yet its key)
// keeps the previous one and is tried again at the next check.
type KeyPair struct {
	certFile, keyFile string
	// CheckEvery is how often the files are looked at, DefaultCheckEvery
	// when zero; set it before use.
	CheckEvery time.Duration
	logger     *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	seen    [2]fileState // of the files that cert was read from
	checked time.Time
}

type fileState struct {
	size int64
	mod  time.Time
}

func stat(name string) (fileState, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return fileState{}, err
	}
	return fileState{size: fi.Size(), mod: fi.ModTime()}, nil
}

// LoadKeyPair reads the pair; it fails if the files do not hold one. A nil
// logger discards the messages about reloads.
func LoadKeyPair(certFile, keyFile string, logger *slog.Logger) (*KeyPair, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	k := &KeyPair{certFile: certFile, keyFile: keyFile, logger: logger}
	if err := k.load(); err != nil {
		return nil, err
	}
	k.checked = time.Now()
	return k, nil
}

// load reads the files; k.mu is held or k is not shared yet.
func (k *KeyPair) load() error {
	var states [2]fileState
	for i, name := range []string{k.certFile, k.keyFile} {
		st, err := stat(name)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		states[i] = st
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("tls: certificate %s and key %s: %w", k.certFile, k.keyFile, err)
	}
	k.cert, k.seen = &cert, states
	return nil
}

// Certificate returns the pair, read again first if the files changed
// since it was read and the last check is CheckEvery old.
func (k *KeyPair) Certificate() *tls.Certificate {
	k.mu.Lock()
	defer k.mu.Unlock()
	every := k.CheckEvery
	if every <= 0 {
		every = DefaultCheckEvery
	}
	if now := time.Now(); now.Sub(k.checked) >= every {
		k.checked = now
		c, errC := stat(k.certFile)
		kk, errK := stat(k.keyFile)
		if errC != nil || errK != nil || c != k.seen[0] || kk != k.seen[1] {
			old := k.cert
			if err := k.load(); err != nil {
				k.logger.Warn("TLS: cannot read the renewed certificate; serving the previous one", "err", err)
			} else if !bytes.Equal(old.Certificate[0], k.cert.Certificate[0]) {
				k.logger.Info("TLS: certificate reloaded", "cert", k.certFile, "not_after", notAfter(k.cert))
			}
		}
	}
	return k.cert
}

func notAfter(c *tls.Certificate) time.Time {
	if c.Leaf != nil {
		return c.Leaf.NotAfter
	}
	return time.Time{}
}

// GetCertificate is tls.Config.GetCertificate.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}

// GetClientCertificate is tls.Config.GetClientCertificate.
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}

// CertPool reads the PEM certificates of file.
func CertPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// Files names the PEM files of one side of a TLS connection: the CA that
// the peer's certificate must be signed by, and this side's certificate
// and key.
type Files struct {
	CA, Cert, Key string
}

// Client reports whether a client uses TLS: a CA or a certificate is given.
func (f Files) Client() bool { return f.CA != "" || f.Cert != "" }

// Validate checks that a certificate comes with its key; flag is the flag
// prefix for messages (e.g. "--kafka-tls").
func (f Files) Validate(flag string) error {
	if (f.Cert == "") != (f.Key == "") {
		return fmt.Errorf("%s-cert and %s-key go together", flag, flag)
	}
	return nil
}

// ClientConfig is the TLS configuration of a client of f, nil when f has
// neither a CA nor a certificate: it trusts f.CA (the system's roots when
// empty) and presents f.Cert, read again when it changes.
func (f Files) ClientConfig(logger *slog.Logger) (*tls.Config, error) {
	if !f.Client() {
		return nil, nil
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("tls: a certificate and its key go together")
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		pool, err := CertPool(f.CA)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if f.Cert != "" {
		kp, err := LoadKeyPair(f.Cert, f.Key, logger)
		if err != nil {
			return nil, err
		}
		c.GetClientCertificate = kp.GetClientCertificate
	}
	return c, nil
}

// ServerConfig is the TLS configuration of a listener serving f.Cert,
// read again when it changes, and, when f.CA is given, requiring client
// certificates signed by it. It is nil when f has no certificate.
func (f Files) ServerConfig(logger *slog.Logger) (*tls.Config, error) {
	if f.Cert == "" {
		if f.CA != "" {
			return nil, errors.New("tls: a CA for client certificates needs a certificate to serve")
		}
		return nil, nil
	}
	if f.Key == "" {
		return nil, errors.New("tls: a certificate needs its key")
	}
	kp, err := LoadKeyPair(f.Cert, f.Key, logger)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.GetCertificate}
	if f.CA != "" {
		pool, err := CertPool(f.CA)
		if err != nil {
			return nil, err
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

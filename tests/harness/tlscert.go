package harness

import (
	"crypto/tls"
	"testing"

	"github.com/bccguard/bccguard/internal/testcert"
)

// TLSFiles is a self-signed certificate written to files for the relay,
// and a client configuration that trusts it.
type TLSFiles struct {
	CertFile string
	KeyFile  string
	// Client verifies the relay's certificate (server name "localhost").
	Client *tls.Config
	// Server serves the certificate (for a sink with STARTTLS).
	Server *tls.Config
}

// WriteTLSCert makes a fresh certificate for localhost, the relay's
// Hostname, 127.0.0.1 and 127.0.0.2 and writes cert.pem and key.pem into dir.
func WriteTLSCert(t testing.TB, dir string) TLSFiles {
	t.Helper()
	c := testcert.New(t, "localhost", Hostname, "127.0.0.1", "127.0.0.2")
	f := TLSFiles{}
	f.CertFile, f.KeyFile = c.WriteFiles(t, dir)
	f.Client = &tls.Config{RootCAs: c.Pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	f.Server = &tls.Config{Certificates: []tls.Certificate{c.TLS}, MinVersion: tls.VersionTLS12}
	return f
}

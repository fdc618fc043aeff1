package deliver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/upstream"
)

// mta is the configured upstream MTA: how to reach it. The SMTP client
// itself is relay/upstream (it pipelines, which go-smtp's client does not).
type mta struct {
	cfg upstream.Config
}

func newMTA(cfg config.Upstream, hostname string) (*mta, error) {
	helo := cfg.Helo
	if helo == "" {
		helo = hostname
	}
	host, _, _ := net.SplitHostPort(cfg.Address)
	name := cfg.TLSServerName
	if name == "" {
		name = host
	}
	tc := &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12}
	switch cfg.TLS {
	case config.UpstreamTLSOpportunistic:
		// As Postfix's "may": encryption without authentication, since an
		// unverifiable certificate is better than clear text.
		tc.InsecureSkipVerify = true
	case config.UpstreamTLSRequired:
		if cfg.TLSCAFile != "" {
			pem, err := os.ReadFile(cfg.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("upstream tls_ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("upstream tls_ca_file %s: no PEM certificates", cfg.TLSCAFile)
			}
			tc.RootCAs = pool
		}
	}
	m := &mta{cfg: upstream.Config{
		Address:        cfg.Address,
		Helo:           helo,
		TLS:            cfg.TLS,
		TLSConfig:      tc,
		Username:       cfg.Username,
		ConnectTimeout: cfg.ConnectTimeout.D(),
		CommandTimeout: cfg.CommandTimeout.D(),
	}}
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("upstream password_file: %w", err)
		}
		m.cfg.Password = strings.TrimRight(string(b), "\r\n")
	}
	return m, nil
}

// Dial opens a connection. Every failure to connect is temporary for the
// mail, whatever the upstream replied: a refused greeting or AUTH (a wrong
// password) must defer deliveries until the operator fixes it, never
// bounce them, so the reply is kept in the text but not as an SMTP error.
func (m *mta) Dial(ctx context.Context) (*upstream.Conn, error) {
	c, err := upstream.Dial(ctx, m.cfg)
	if err != nil {
		return nil, &connectError{text: err.Error()}
	}
	return c, nil
}

// connectError is a failure to open an upstream connection.
type connectError struct{ text string }

func (e *connectError) Error() string { return e.text }

// remoteHost is the upstream's host name or address, for DSNs' Remote-MTA.
func remoteHost(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}

package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/config"
)

// upstream knows how to reach the MTA bccguard delivers to.
type upstream struct {
	cfg      config.Upstream
	helo     string
	tls      *tls.Config
	password string
}

func newUpstream(cfg config.Upstream, hostname string) (*upstream, error) {
	u := &upstream{cfg: cfg, helo: cfg.Helo}
	if u.helo == "" {
		u.helo = hostname
	}
	host, _, _ := net.SplitHostPort(cfg.Address)
	name := cfg.TLSServerName
	if name == "" {
		name = host
	}
	u.tls = &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12}
	switch cfg.TLS {
	case "opportunistic":
		// As Postfix's "may": encryption without authentication, since an
		// unverifiable certificate is better than clear text.
		u.tls.InsecureSkipVerify = true
	case "required":
		if cfg.TLSCAFile != "" {
			pem, err := os.ReadFile(cfg.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("upstream tls_ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("upstream tls_ca_file %s: no PEM certificates", cfg.TLSCAFile)
			}
			u.tls.RootCAs = pool
		}
	}
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("upstream password_file: %w", err)
		}
		u.password = strings.TrimRight(string(b), "\r\n")
	}
	return u, nil
}

// upConn is one reusable connection to the upstream.
type upConn struct {
	c        *smtp.Client
	lastUsed time.Time
}

// errNetwork marks failures to talk to the upstream at all (as opposed to
// a reply it gave); they are always temporary.
var errNetwork = errors.New("upstream unreachable")

func (u *upstream) dial(ctx context.Context) (*upConn, error) {
	d := net.Dialer{Timeout: u.cfg.ConnectTimeout.D()}
	conn, err := d.DialContext(ctx, "tcp", u.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNetwork, err)
	}
	tlsOn := false
	if u.cfg.TLS != "none" {
		tc, offered, err := u.startTLS(conn)
		switch {
		case err != nil && u.cfg.TLS == "required":
			conn.Close()
			return nil, fmt.Errorf("%w: STARTTLS: %w", errNetwork, err)
		case err != nil:
			// Opportunistic: a failed handshake falls back to clear text
			// on a new connection, as Postfix's "may" does.
			conn.Close()
			plain := *u
			plain.cfg.TLS = "none"
			return plain.dial(ctx)
		case !offered && u.cfg.TLS == "required":
			conn.Close()
			return nil, fmt.Errorf("%w: upstream does not offer STARTTLS and tls is required", errNetwork)
		case offered:
			conn, tlsOn = tc, true
		}
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout = u.cfg.CommandTimeout.D()
	c.SubmissionTimeout = u.cfg.CommandTimeout.D()
	if err := c.Hello(u.helo); err != nil {
		c.Close()
		return nil, wrapNet(err)
	}
	if err := u.login(c, tlsOn); err != nil {
		c.Close()
		return nil, err
	}
	return &upConn{c: c, lastUsed: time.Now()}, nil
}

// startTLS runs the clear-text part of the conversation (greeting, EHLO,
// STARTTLS) itself. go-smtp's client can only STARTTLS through
// NewClientStartTLS, which says EHLO "localhost" instead of our name; so the
// TLS connection handed to it afterwards replays a greeting for it to read.
// It returns offered=false (and the connection untouched) when the upstream
// offers no STARTTLS.
func (u *upstream) startTLS(conn net.Conn) (net.Conn, bool, error) {
	_ = conn.SetDeadline(time.Now().Add(u.cfg.CommandTimeout.D()))
	defer conn.SetDeadline(time.Time{})
	tp := textproto.NewConn(conn)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, false, err
	}
	if err := tp.PrintfLine("EHLO %s", u.helo); err != nil {
		return nil, false, err
	}
	_, msg, err := tp.ReadResponse(250)
	if err != nil {
		return nil, false, err
	}
	offered := false
	for _, line := range strings.Split(msg, "\n") {
		if strings.EqualFold(strings.TrimSpace(line), "STARTTLS") {
			offered = true
		}
	}
	if !offered {
		// Hand the connection on as if fresh: replay the greeting, and
		// go-smtp's own EHLO will simply be answered again.
		return &replayConn{Conn: conn, r: io.MultiReader(strings.NewReader("220 replay\r\n"), conn)}, false, nil
	}
	if err := tp.PrintfLine("STARTTLS"); err != nil {
		return nil, true, err
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, true, err
	}
	tc := tls.Client(conn, u.tls)
	if err := tc.Handshake(); err != nil {
		return nil, true, err
	}
	return &replayConn{Conn: tc, r: io.MultiReader(strings.NewReader("220 tls\r\n"), tc)}, true, nil
}

// replayConn reads from r (a replayed greeting, then the connection).
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (u *upstream) login(c *smtp.Client, tlsOn bool) error {
	if u.cfg.Username == "" {
		return nil
	}
	host, _, _ := net.SplitHostPort(u.cfg.Address)
	if ip := net.ParseIP(host); !tlsOn && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%w: refusing to send the upstream password without TLS", errNetwork)
	}
	if err := c.Auth(sasl.NewPlainClient("", u.cfg.Username, u.password)); err != nil {
		return fmt.Errorf("upstream AUTH: %w", err)
	}
	return nil
}

// rcptResult is the upstream's answer for one recipient.
type rcptResult struct {
	err error // nil: accepted and delivered
}

// send runs one transaction. A nil error means the transaction completed
// (each recipient's own result is in the slice); an error means nothing was
// delivered, with the reason.
func (uc *upConn) send(from string, mo *smtp.MailOptions, rcpts []string, ro []*smtp.RcptOptions, body func(io.Writer) error) ([]rcptResult, error) {
	uc.lastUsed = time.Now()
	if err := uc.c.Mail(from, mo); err != nil {
		return nil, wrapNet(err)
	}
	res := make([]rcptResult, len(rcpts))
	accepted := 0
	for i, r := range rcpts {
		if err := uc.c.Rcpt(r, ro[i]); err != nil {
			if !isSMTPErr(err) {
				return nil, wrapNet(err)
			}
			res[i].err = err
			continue
		}
		accepted++
	}
	if accepted == 0 {
		_ = uc.c.Reset()
		return res, nil
	}
	w, err := uc.c.Data()
	if err != nil {
		return nil, wrapNet(err)
	}
	if err := body(w); err != nil {
		// The stream is in an unknown state: the caller drops the connection.
		return nil, fmt.Errorf("render: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, wrapNet(err)
	}
	return res, nil
}

func wrapNet(err error) error {
	if isSMTPErr(err) {
		return err
	}
	return fmt.Errorf("%w: %w", errNetwork, err)
}

func (uc *upConn) close() {
	_ = uc.c.Quit()
	_ = uc.c.Close()
}

// host is the upstream's host name or address, for DSNs' Remote-MTA.
func (u *upstream) host() string {
	h, _, _ := net.SplitHostPort(u.cfg.Address)
	return h
}

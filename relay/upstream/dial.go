package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/bccguard/bccguard/config"
)

// Dial connects to the upstream: greeting, EHLO, STARTTLS as cfg.TLS says,
// EHLO again, AUTH PLAIN. Every failure wraps ErrNetwork, except a refused
// AUTH (5xx, "upstream AUTH: ..." wrapping the *smtp.SMTPError) and a bad
// cfg.TLS. ctx bounds the whole dial; CommandTimeout each reply.
//
// With TLS "opportunistic", STARTTLS is used when offered; if the handshake
// fails, Dial connects again in clear text without trying it, as Postfix's
// "may" does. With "required", its absence or failure is an error.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	switch cfg.TLS {
	case "", config.UpstreamTLSNone, config.UpstreamTLSOpportunistic, config.UpstreamTLSRequired:
	default:
		return nil, fmt.Errorf("upstream: unknown TLS mode %q", cfg.TLS)
	}
	if cfg.Helo == "" || strings.Contains(cfg.Helo, " ") || checkLine("Helo", cfg.Helo) != nil {
		return nil, fmt.Errorf("upstream: invalid Helo %q", cfg.Helo)
	}
	tryTLS := cfg.TLS == config.UpstreamTLSOpportunistic || cfg.TLS == config.UpstreamTLSRequired
	c, handshakeFailed, err := dial(ctx, cfg, tryTLS)
	if handshakeFailed && cfg.TLS == config.UpstreamTLSOpportunistic {
		c, _, err = dial(ctx, cfg, false)
	}
	return c, err
}

// dial makes one connection. handshakeFailed tells Dial that the TLS
// handshake (not the conversation around it) went wrong.
func dial(ctx context.Context, cfg Config, tryTLS bool) (c *Conn, handshakeFailed bool, err error) {
	d := net.Dialer{Timeout: cfg.ConnectTimeout}
	nc, err := d.DialContext(ctx, "tcp", cfg.Address)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrNetwork, err)
	}
	c = newConn(nc, cfg.CommandTimeout)
	// The conversation has only reply deadlines; closing the socket is how
	// a cancelled ctx interrupts it.
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	defer func() {
		if !stop() && err == nil {
			err = fmt.Errorf("%w: %w", ErrNetwork, ctx.Err()) // closed just now
		}
		if err == nil {
			return
		}
		_ = c.fail(err)
		c = nil
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			// The I/O error is only the closed socket; say why.
			err = fmt.Errorf("%w: %w", cerr, err)
		}
	}()

	se, err := c.expect(2)
	if err != nil {
		return c, false, err
	}
	if se != nil || c.code != 220 {
		return c, false, fmt.Errorf("%w: greeting: %w", ErrNetwork, replyError(c.code, c.text))
	}
	if err := c.hello(cfg.Helo); err != nil {
		return c, false, err
	}
	if tryTLS {
		if handshakeFailed, err := c.startTLS(ctx, cfg); err != nil {
			return c, handshakeFailed, err
		}
	}
	if cfg.Username != "" {
		if err := c.auth(cfg); err != nil {
			return c, false, err
		}
	}
	return c, false, nil
}

// hello says EHLO, or HELO to a server that refuses EHLO (5xx), and records
// the extensions offered.
func (c *Conn) hello(name string) error {
	c.writeLine("EHLO " + name)
	if err := c.flush(); err != nil {
		return err
	}
	se, err := c.expect(2)
	if err != nil {
		return err
	}
	if se == nil {
		c.parseEHLO()
		return nil
	}
	if se.Code/100 != 5 {
		return c.fail(fmt.Errorf("%w: EHLO: %w", ErrNetwork, se))
	}
	c.writeLine("HELO " + name)
	if err := c.flush(); err != nil {
		return err
	}
	if se, err = c.expect(2); err != nil {
		return err
	}
	if se != nil {
		return c.fail(fmt.Errorf("%w: HELO: %w", ErrNetwork, se))
	}
	c.ext, c.feat = map[string]string{}, features{}
	return nil
}

// parseEHLO reads the keywords of the EHLO reply in c.text; its first line
// is the server's name.
func (c *Conn) parseEHLO() {
	c.ext, c.feat = map[string]string{}, features{}
	lines := strings.Split(string(c.text), "\n")
	for _, l := range lines[1:] {
		kw, param, _ := strings.Cut(strings.TrimSpace(l), " ")
		if kw != "" {
			c.ext[strings.ToUpper(kw)] = strings.TrimSpace(param)
		}
	}
	_, c.feat.pipelining = c.ext["PIPELINING"]
	_, c.feat.dsn = c.ext["DSN"]
	_, c.feat.eightBit = c.ext["8BITMIME"]
	_, c.feat.utf8 = c.ext["SMTPUTF8"]
	var size string
	if size, c.feat.size = c.ext["SIZE"]; c.feat.size {
		if n, err := strconv.ParseInt(size, 10, 64); err == nil && n > 0 {
			c.feat.maxSize = n
		}
	}
}

// startTLS upgrades the connection if the upstream offers STARTTLS, and
// says EHLO again, as RFC 3207 requires (the extensions may differ).
func (c *Conn) startTLS(ctx context.Context, cfg Config) (handshakeFailed bool, err error) {
	required := cfg.TLS == config.UpstreamTLSRequired
	if !c.Supports("STARTTLS") {
		if required {
			return false, fmt.Errorf("%w: upstream does not offer STARTTLS and TLS is required", ErrNetwork)
		}
		return false, nil
	}
	c.writeLine("STARTTLS")
	if err := c.flush(); err != nil {
		return false, err
	}
	se, err := c.expect(2)
	if err != nil {
		return false, err
	}
	if se == nil && c.code != 220 {
		se = replyError(c.code, c.text)
	}
	if se != nil {
		if required {
			return false, fmt.Errorf("%w: STARTTLS: %w", ErrNetwork, se)
		}
		return false, nil // RFC 3207 §4: the session continues in clear text
	}
	if c.r.Buffered() > 0 {
		// Bytes sent before the handshake would be taken as coming over
		// TLS: the classic STARTTLS command injection (CVE-2011-0411).
		return false, fmt.Errorf("%w: STARTTLS: data after the 220 reply", ErrNetwork)
	}
	tc := tls.Client(c.nc, tlsConfig(cfg))
	if c.timeout > 0 {
		_ = c.nc.SetDeadline(time.Now().Add(c.timeout))
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return true, fmt.Errorf("%w: STARTTLS: %w", ErrNetwork, err)
	}
	_ = c.nc.SetDeadline(time.Time{})
	c.nc, c.tls = tc, true
	c.r.Reset(tc)
	c.w.Reset(netWriter{c})
	return false, c.hello(cfg.Helo)
}

// tlsConfig is cfg.TLSConfig, with ServerName defaulted to the host.
func tlsConfig(cfg Config) *tls.Config {
	var tc *tls.Config
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	} else {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if tc.ServerName == "" {
		tc.ServerName, _, _ = net.SplitHostPort(cfg.Address)
	}
	return tc
}

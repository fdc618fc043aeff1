package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/internal/smtptest"
)

func TestAuth(t *testing.T) {
	for _, tc := range []struct {
		name, user, pass string
		address          func(addr string) string // nil: 127.0.0.1
		wantErr          string
		network          bool
		code             int
	}{
		{name: "ok", user: "relay", pass: "s3cret"},
		{name: "wrong password", user: "relay", pass: "nope", wantErr: "upstream AUTH:", code: 535},
		{name: "not loopback, no TLS", user: "relay", pass: "s3cret", network: true, wantErr: "without TLS",
			address: func(addr string) string {
				_, port, _ := net.SplitHostPort(addr)
				return net.JoinHostPort("localhost", port) // a name, not a loopback IP
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, smtptest.PlainAuth(func(user, pass string) error {
				if user != "relay" || pass != "s3cret" {
					return errors.New("bad")
				}
				return nil
			}), smtptest.Configure(func(s *smtp.Server) { s.AllowInsecureAuth = true }))
			cfg := serverConfig(ts)
			cfg.Username, cfg.Password = tc.user, tc.pass
			if tc.address != nil {
				cfg.Address = tc.address(cfg.Address)
			}
			c, err := Dial(context.Background(), cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Send(&Transaction{From: "a@example.com", Rcpts: rcpts("b@example.com"), Body: body("x\r\n")}); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if errors.Is(err, ErrNetwork) != tc.network {
				t.Errorf("errors.Is(err, ErrNetwork) = %v", !tc.network)
			}
			var se *smtp.SMTPError
			if tc.code != 0 && (!errors.As(err, &se) || se.Code != tc.code) {
				t.Errorf("err = %v, want SMTP %d", err, tc.code)
			}
		})
	}
}

func TestStartTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}}
	for _, tc := range []struct {
		name      string
		mode      config.UpstreamTLS
		serverTLS bool
		trusted   bool
		auth      bool // over TLS, without AllowInsecureAuth
		wantTLS   bool
		network   bool
		conns     int // connections the server saw
	}{
		{name: "required", mode: "required", serverTLS: true, trusted: true, wantTLS: true, conns: 1},
		{name: "required with auth", mode: "required", serverTLS: true, trusted: true, auth: true, wantTLS: true, conns: 1},
		{name: "required untrusted", mode: "required", serverTLS: true, network: true, conns: 1},
		{name: "required not offered", mode: "required", network: true, conns: 1},
		{name: "opportunistic", mode: "opportunistic", serverTLS: true, trusted: true, wantTLS: true, conns: 1},
		{name: "opportunistic handshake fails", mode: "opportunistic", serverTLS: true, conns: 2},
		{name: "opportunistic not offered", mode: "opportunistic", conns: 1},
		{name: "none", mode: "none", serverTLS: true, trusted: true, conns: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []smtptest.Option
			if tc.auth {
				opts = append(opts, smtptest.PlainAuth(func(user, pass string) error { return nil }))
			}
			if tc.serverTLS {
				opts = append(opts, smtptest.StartTLS(serverTLS))
			}
			ts := startServer(t, opts...)
			cfg := serverConfig(ts)
			cfg.TLS = tc.mode
			roots := x509.NewCertPool() // trusts nothing
			if tc.trusted {
				roots = pool
			}
			cfg.TLSConfig = &tls.Config{ServerName: "mx.example", RootCAs: roots, MinVersion: tls.VersionTLS12}
			if tc.auth {
				cfg.Username, cfg.Password = "relay", "pw"
			}
			c, err := Dial(context.Background(), cfg)
			if tc.network {
				if !errors.Is(err, ErrNetwork) {
					t.Fatalf("err = %v, want ErrNetwork", err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if c.TLS() != tc.wantTLS {
					t.Errorf("TLS() = %v", c.TLS())
				}
				if c.Supports("STARTTLS") == tc.wantTLS && tc.serverTLS {
					t.Errorf("Supports(STARTTLS) = %v after EHLO", !tc.wantTLS)
				}
				if _, err := c.Send(&Transaction{From: "a@example.com", Rcpts: rcpts("b@example.com"), Body: body("x\r\n")}); err != nil {
					t.Fatal(err)
				}
			}
			if n := ts.Connections(); n != tc.conns {
				t.Errorf("server saw %d connections, want %d", n, tc.conns)
			}
		})
	}
}

// TestDialFailures: connection-level failures while dialing are ErrNetwork.
func TestDialFailures(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	_, err = Dial(context.Background(), Config{Address: closed, Helo: "relay.example", ConnectTimeout: time.Second})
	if !errors.Is(err, ErrNetwork) {
		t.Errorf("refused connection: %v, want ErrNetwork", err)
	}
	if _, err := Dial(context.Background(), Config{Address: closed, Helo: "relay.example", TLS: "sometimes"}); err == nil || errors.Is(err, ErrNetwork) {
		t.Errorf("bad TLS mode: %v", err)
	}
	if _, err := Dial(context.Background(), Config{Address: closed, Helo: "relay.example\r\nMAIL FROM:<>"}); err == nil || errors.Is(err, ErrNetwork) {
		t.Errorf("bad Helo: %v", err)
	}

	// A cancelled context stops a dial stuck waiting for the greeting.
	silent := rawServer(t, func(rc *rawConn) { rc.expectClosed(5 * time.Second) })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = Dial(ctx, Config{Address: silent, Helo: "relay.example", CommandTimeout: 5 * time.Second})
	if !errors.Is(err, ErrNetwork) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled dial: %v, want ErrNetwork and context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancelled dial took %v", d)
	}

	// A silent server: CommandTimeout ends the wait.
	silent = rawServer(t, func(rc *rawConn) { rc.expectClosed(5 * time.Second) })
	start = time.Now()
	_, err = Dial(context.Background(), Config{Address: silent, Helo: "relay.example", CommandTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrNetwork) {
		t.Errorf("silent server: %v, want ErrNetwork", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout took %v", d)
	}
}

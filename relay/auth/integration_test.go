package auth

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"net/textproto"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/internal/testcert"
)

// startServer runs a capturing go-smtp server with STARTTLS on 127.0.0.1,
// wired to this package as the relay wires it: AUTH with Mechanisms and
// NewServer checking Users, and MAIL refused until AUTH has succeeded. It
// returns the address and a client TLS config that trusts its certificate.
func startServer(t *testing.T) (string, *tls.Config) {
	t.Helper()
	cert := testcert.New(t, "127.0.0.1")

	users, err := NewUsers([]User{{Name: "crm", PasswordHash: hash(t, "s3cret")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := smtptest.NewSink(t,
		smtptest.StartTLS(&tls.Config{Certificates: []tls.Certificate{cert.TLS}}),
		smtptest.Auth(Mechanisms(), func(mech string, done func(string)) (sasl.Server, error) {
			return NewServer(mech, func(user, pass string) error {
				if err := users.Check(user, pass); err != nil {
					return err
				}
				done(user)
				return nil
			})
		}),
		smtptest.Configure(func(srv *smtp.Server) {
			srv.Domain = "localhost"
			srv.ReadTimeout = 10 * time.Second
			srv.WriteTimeout = 10 * time.Second
		}))
	s.OnMail(func(_ *smtp.Conn, m *smtptest.Message) error {
		if m.User == "" {
			return smtp.ErrAuthRequired
		}
		return nil
	})
	return s.Addr(), &tls.Config{RootCAs: cert.Pool, ServerName: "127.0.0.1"}
}

func TestSMTPAuth(t *testing.T) {
	addr, tlsConfig := startServer(t)

	tests := []struct {
		name   string
		client sasl.Client
		ok     bool
	}{
		{"plain", sasl.NewPlainClient("", "crm", "s3cret"), true},
		{"plain with own authzid", sasl.NewPlainClient("crm", "crm", "s3cret"), true},
		{"login", sasl.NewLoginClient("crm", "s3cret"), true},
		{"plain wrong password", sasl.NewPlainClient("", "crm", "wrong"), false},
		{"login wrong password", sasl.NewLoginClient("crm", "wrong"), false},
		{"login unknown user", sasl.NewLoginClient("ghost", "s3cret"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := smtp.DialStartTLS(addr, tlsConfig)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if !c.SupportsAuth("PLAIN") || !c.SupportsAuth("LOGIN") {
				t.Fatal("PLAIN and LOGIN not advertised after STARTTLS")
			}
			err = c.Auth(tc.client)
			if tc.ok {
				if err != nil {
					t.Fatalf("Auth: %v", err)
				}
				if err := c.Mail("sender@example.com", nil); err != nil {
					t.Fatalf("MAIL after AUTH: %v", err)
				}
				return
			}
			var se *smtp.SMTPError
			if !errors.As(err, &se) || se.Code != 535 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 8}) {
				t.Fatalf("Auth err = %v, want 535 5.7.8", err)
			}
			if err := c.Mail("sender@example.com", nil); err == nil {
				t.Fatal("MAIL accepted after failed AUTH")
			}
		})
	}
}

func TestSMTPAuthNeedsTLS(t *testing.T) {
	addr, _ := startServer(t)
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Fatal("AUTH offered before STARTTLS")
	}
}

// TestSMTPAuthRaw speaks SMTP by hand over STARTTLS, for the forms that
// go-sasl's clients never send.
func TestSMTPAuthRaw(t *testing.T) {
	addr, tlsConfig := startServer(t)
	b64 := base64.StdEncoding.EncodeToString
	type exchange struct {
		send string
		code int
		msg  string
	}
	tests := []struct {
		name string
		conv []exchange
	}{
		{"login initial response", []exchange{
			{"AUTH LOGIN " + b64([]byte("crm")), 334, "UGFzc3dvcmQ6"},
			{b64([]byte("s3cret")), 235, "2.0.0 Authentication succeeded"},
		}},
		{"login empty initial response", []exchange{
			{"AUTH LOGIN =", 334, "VXNlcm5hbWU6"},
			{b64([]byte("crm")), 334, "UGFzc3dvcmQ6"},
			{b64([]byte("s3cret")), 235, "2.0.0 Authentication succeeded"},
		}},
		{"login wrong password", []exchange{
			{"AUTH LOGIN " + b64([]byte("crm")), 334, "UGFzc3dvcmQ6"},
			{b64([]byte("wrong")), 535, "5.7.8 Authentication failed"},
		}},
		{"login cancelled", []exchange{
			{"AUTH LOGIN", 334, "VXNlcm5hbWU6"},
			{"*", 501, "5.0.0 Negotiation cancelled"},
		}},
		{"plain authzid mismatch", []exchange{
			{"AUTH PLAIN " + b64([]byte("boss\x00crm\x00s3cret")), 535, "5.7.8 " + ErrAuthzid.Message},
		}},
		{"plain malformed", []exchange{
			{"AUTH PLAIN " + b64([]byte("crm:s3cret")), 501, "5.5.2 Malformed authentication data"},
		}},
		{"plain after empty challenge", []exchange{
			{"AUTH PLAIN", 334, ""},
			{b64([]byte("\x00crm\x00s3cret")), 235, "2.0.0 Authentication succeeded"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn := rawStartTLS(t, addr, tlsConfig)
			for _, ex := range tc.conv {
				if err := conn.PrintfLine("%s", ex.send); err != nil {
					t.Fatal(err)
				}
				code, msg, err := conn.ReadResponse(0)
				if err != nil || code != ex.code || msg != ex.msg {
					t.Fatalf("%q: got %d %q (%v), want %d %q", ex.send, code, msg, err, ex.code, ex.msg)
				}
			}
		})
	}
}

func rawStartTLS(t *testing.T, addr string, tlsConfig *tls.Config) *textproto.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	expect := func(c *textproto.Conn, cmd string, code int) {
		t.Helper()
		if cmd != "" {
			if err := c.PrintfLine("%s", cmd); err != nil {
				t.Fatal(err)
			}
		}
		if _, msg, err := c.ReadResponse(code); err != nil {
			t.Fatalf("%q: %v %s", cmd, err, msg)
		}
	}
	plain := textproto.NewConn(nc)
	expect(plain, "", 220)
	expect(plain, "EHLO client.test", 250)
	expect(plain, "STARTTLS", 220)
	tc := tls.Client(nc, tlsConfig)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	conn := textproto.NewConn(tc)
	expect(conn, "EHLO client.test", 250)
	return conn
}

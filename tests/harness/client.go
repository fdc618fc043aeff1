package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// ClientHelo is the name test clients give in EHLO.
const ClientHelo = "client.example.com"

// SendOptions tunes one submission by go-smtp's client.
type SendOptions struct {
	// LocalAddr is the client's source IP (e.g. "127.0.0.2"); "" lets the
	// kernel choose.
	LocalAddr string
	// StartTLS, if set, upgrades the connection with STARTTLS first.
	StartTLS *tls.Config
	// Auth, if set, authenticates after STARTTLS.
	Auth sasl.Client
	// MailOpts and RcptOpts are passed to MAIL FROM and every RCPT TO.
	MailOpts *smtp.MailOptions
	RcptOpts *smtp.RcptOptions
	// Timeout bounds the whole submission (default 2 minutes).
	Timeout time.Duration
}

// Send submits raw from from to the recipients and fails the test unless
// the server accepts it; it returns the text of the final 250 reply (for
// bccguard "2.0.0 … queued as ID").
func Send(t testing.TB, addr, from string, to []string, raw []byte) string {
	t.Helper()
	return SendWith(t, addr, from, to, bytes.NewReader(raw), nil)
}

// SendWith is Send with options and a streamed body.
func SendWith(t testing.TB, addr, from string, to []string, body io.Reader, o *SendOptions) string {
	t.Helper()
	reply, err := TrySend(addr, from, to, body, o)
	if err != nil {
		t.Fatalf("send to %s: %v", addr, err)
	}
	return reply
}

// TrySend submits a message and returns the final reply's text or the first
// error; a refusal by the server is an *smtp.SMTPError (see Code).
func TrySend(addr, from string, to []string, body io.Reader, o *SendOptions) (string, error) {
	if o == nil {
		o = &SendOptions{}
	}
	c, err := DialClient(addr, o)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.Mail(from, o.MailOpts); err != nil {
		return "", fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, o.RcptOpts); err != nil {
			return "", fmt.Errorf("RCPT TO:<%s>: %w", rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return "", fmt.Errorf("DATA: %w", err)
	}
	if _, err := io.Copy(w, body); err != nil {
		w.Close()
		return "", fmt.Errorf("DATA content: %w", err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", fmt.Errorf("end of DATA: %w", err)
	}
	c.Quit()
	return resp.StatusText, nil
}

// DialClient connects go-smtp's client to addr as o says: source address,
// EHLO, STARTTLS and AUTH. The connection's deadline is o.Timeout.
func DialClient(addr string, o *SendOptions) (*smtp.Client, error) {
	if o == nil {
		o = &SendOptions{}
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	conn, err := dial(addr, o.LocalAddr, timeout)
	if err != nil {
		return nil, err
	}
	var c *smtp.Client
	if o.StartTLS != nil {
		// go-smtp says EHLO as "localhost" before STARTTLS here; the EHLO
		// that matters, after it, uses ClientHelo.
		if c, err = smtp.NewClientStartTLS(conn, o.StartTLS); err != nil {
			conn.Close()
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = timeout
	c.SubmissionTimeout = timeout
	if err := c.Hello(ClientHelo); err != nil {
		c.Close()
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	if o.Auth != nil {
		if err := c.Auth(o.Auth); err != nil {
			c.Close()
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	return c, nil
}

func dial(addr, local string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.DialContext(ctx, "tcp", addr)
}

// Code returns the SMTP reply code carried by err (0 if it carries none) and
// its enhanced status code as "x.y.z" ("" if none).
func Code(err error) (int, string) {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return 0, ""
	}
	enh := ""
	if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != smtp.EnhancedCodeNotSet {
		enh = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	return se.Code, enh
}

package upstream

import (
	"encoding/base64"
	"fmt"
	"net"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// maxAuthRounds bounds the challenges a server may send; PLAIN needs none.
const maxAuthRounds = 4

// auth logs in with AUTH PLAIN, its credentials on the AUTH line itself
// (RFC 4954 initial response), saving a round trip. A 5xx refusal is
// returned as "upstream AUTH: " wrapping the *smtp.SMTPError, not as
// ErrNetwork: the upstream is there, it does not accept us. A 4xx (or a
// 421) is temporary and ErrNetwork.
func (c *Conn) auth(cfg Config) error {
	host, _, _ := net.SplitHostPort(cfg.Address)
	if ip := net.ParseIP(host); !c.tls && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%w: refusing to send the upstream password without TLS", ErrNetwork)
	}
	client := sasl.NewPlainClient("", cfg.Username, cfg.Password)
	mech, ir, err := client.Start()
	if err != nil {
		return fmt.Errorf("upstream AUTH: %w", err)
	}
	line := "AUTH " + mech
	if ir != nil {
		line += " " + encodeSASL(ir)
	}
	se, err := c.authStep(line)
	for round := 0; err == nil && se == nil && c.code == 334; round++ {
		// A challenge: answer it, or cancel with "*" (RFC 4954 §4).
		chal, derr := base64.StdEncoding.DecodeString(string(c.text))
		var resp []byte
		if derr == nil && round < maxAuthRounds {
			resp, derr = client.Next(chal)
		}
		if derr != nil {
			if se, err = c.authStep("*"); err == nil {
				return fmt.Errorf("upstream AUTH: cancelled: %w", derr)
			}
			break
		}
		se, err = c.authStep(encodeSASL(resp))
	}
	switch {
	case err != nil:
		return err
	case se == nil && c.code/100 == 2: // 235, normally
		return nil
	case se == nil:
		se = replyError(c.code, c.text) // another 2xx/3xx: not a login
	}
	if se.Code/100 == 4 {
		return fmt.Errorf("%w: upstream AUTH: %w", ErrNetwork, se)
	}
	return fmt.Errorf("upstream AUTH: %w", se)
}

// authStep sends one line of the exchange. 2xx and 3xx come back as
// se == nil, with c.code telling which.
func (c *Conn) authStep(line string) (*smtp.SMTPError, error) {
	c.writeLine(line)
	if err := c.flush(); err != nil {
		return nil, err
	}
	se, err := c.expect(2)
	if se != nil && se.Code/100 == 3 {
		return nil, nil
	}
	return se, err
}

// encodeSASL is base64, with "=" for an empty response (RFC 4954 §4).
func encodeSASL(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

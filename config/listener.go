package config

import (
	"cmp"
	"fmt"
	"net"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bccguard/bccguard/internal/lineend"
)

// Listener is one SMTP ingress endpoint.
type Listener struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
	// TLS is none, starttls or implicit.
	TLS     ListenerTLS `yaml:"tls"`
	TLSCert string      `yaml:"tls_cert"`
	TLSKey  string      `yaml:"tls_key"`
	// AllowNetworks may relay without AUTH.
	AllowNetworks []Prefix `yaml:"allow_networks"`
	// Auth offers SMTP AUTH (over TLS only) to clients on this listener.
	Auth *bool `yaml:"auth"`
	// BareNewlines is what happens to a bare CR or LF (not part of a
	// CRLF) in DATA or BDAT: reject (the default: 550 5.6.0 at the end of
	// the data) or normalize (each becomes CRLF).
	BareNewlines lineend.Mode `yaml:"bare_newlines"`
	Limits       Limits       `yaml:"limits"`
}

// Limits bound what one listener accepts.
type Limits struct {
	MaxMessageSize Size `yaml:"max_message_size"`
	MaxRecipients  int  `yaml:"max_recipients"`
	// MaxLineLength bounds a line of message text (DATA or BDAT), in
	// octets without its CRLF; a longer one is refused at the end of the
	// data. Command lines have their own fixed bound.
	MaxLineLength  int      `yaml:"max_line_length"`
	MaxHeaderSize  Size     `yaml:"max_header_size"`
	MaxConnections int      `yaml:"max_connections"`
	CommandTimeout Duration `yaml:"command_timeout"`
	DataTimeout    Duration `yaml:"data_timeout"`
}

// DefaultListener is the listener used when the configuration names none.
func DefaultListener() Listener {
	return Listener{Name: "smtp", Address: "127.0.0.1:2525", TLS: ListenerTLSNone}
}

// DefaultLimits are the limits of a listener that sets none.
func DefaultLimits() Limits {
	return Limits{
		MaxMessageSize: 50 << 20,
		MaxRecipients:  1000,
		// RFC 5322 allows 998 octets per line; real mailings exceed it
		// (HTML on one line, 7 KB in the shared corpus), and Postfix takes
		// any length. Lines are streamed, never held whole, so the bound
		// is for the upstream's sake, not memory: lenient, but bounded.
		MaxLineLength:  1 << 20,
		MaxHeaderSize:  1 << 20,
		MaxConnections: 200,
		CommandTimeout: Duration(5 * time.Minute),
		DataTimeout:    Duration(10 * time.Minute),
	}
}

// validateListeners gives a configuration without listeners the default
// one, names the unnamed, and checks each.
func (c *Config) validateListeners() []error {
	var errs []error
	if len(c.Listeners) == 0 {
		c.Listeners = []Listener{DefaultListener()}
	}
	names := map[string]bool{}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Name == "" {
			l.Name = fmt.Sprintf("listener%d", i+1)
		}
		if names[l.Name] {
			errs = append(errs, c.errf(path("listeners", i, "name"), "listener name %q is used twice", l.Name))
		}
		names[l.Name] = true
		errs = append(errs, c.validateListener(i)...)
	}
	return errs
}

// validateListener checks listener i and fills in its defaults: no TLS,
// loopback only, AUTH where there is TLS, bare newlines rejected.
func (c *Config) validateListener(i int) []error {
	var errs errList
	l := &c.Listeners[i]
	at := func(k ...any) []any { return append(path("listeners", i), k...) }
	if _, _, err := net.SplitHostPort(l.Address); err != nil {
		errs.add(c.errf(at("address"), "listener %s: address %q: expected host:port", l.Name, l.Address))
	}
	if l.TLS == "" {
		l.TLS = ListenerTLSNone
	}
	switch tls, err := ParseListenerTLS(string(l.TLS)); {
	case err != nil:
		errs.add(c.errf(at("tls"), "listener %s: tls %v", l.Name, err))
	case tls != ListenerTLSNone && (l.TLSCert == "" || l.TLSKey == ""):
		errs.add(c.errf(at("tls"), "listener %s: tls %s needs tls_cert and tls_key", l.Name, l.TLS))
	}
	if l.AllowNetworks == nil {
		l.AllowNetworks = loopback()
	}
	if l.Auth == nil {
		on := l.TLS != ListenerTLSNone
		l.Auth = &on
	}
	if *l.Auth && l.TLS == ListenerTLSNone {
		errs.add(c.errf(at("auth"), "listener %s: auth needs TLS (tls: starttls or implicit): passwords never cross the network in clear", l.Name))
	}
	if l.BareNewlines == "" {
		l.BareNewlines = lineend.Reject
	}
	if _, err := ParseBareNewlines(string(l.BareNewlines)); err != nil {
		errs.add(c.errf(at("bare_newlines"), "listener %s: bare_newlines %v", l.Name, err))
	}
	return append(errs, c.validateLimits(i)...)
}

// validateLimits fills in the unset limits of listener i with
// DefaultLimits and checks them.
func (c *Config) validateLimits(i int) []error {
	var errs errList
	l := &c.Listeners[i]
	at := func(k ...any) []any { return append(path("listeners", i, "limits"), k...) }
	d := DefaultLimits()
	lim := &l.Limits
	// Zero means unset (the YAML left it out).
	lim.MaxMessageSize = cmp.Or(lim.MaxMessageSize, d.MaxMessageSize)
	lim.MaxRecipients = cmp.Or(lim.MaxRecipients, d.MaxRecipients)
	lim.MaxLineLength = cmp.Or(lim.MaxLineLength, d.MaxLineLength)
	lim.MaxHeaderSize = cmp.Or(lim.MaxHeaderSize, d.MaxHeaderSize)
	lim.MaxConnections = cmp.Or(lim.MaxConnections, d.MaxConnections)
	lim.CommandTimeout = cmp.Or(lim.CommandTimeout, d.CommandTimeout)
	lim.DataTimeout = cmp.Or(lim.DataTimeout, d.DataTimeout)
	if lim.MaxLineLength < 1000 {
		errs.add(c.errf(at("max_line_length"), "listener %s: max_line_length must be at least 1000 (RFC 5321)", l.Name))
	}
	if lim.MaxRecipients < 0 || lim.MaxConnections < 0 {
		errs.add(c.errf(at(), "listener %s: limits must not be negative", l.Name))
	}
	return errs
}

// loopback is the networks a listener allows when it names none.
func loopback() []Prefix {
	var out []Prefix
	for _, s := range []string{"127.0.0.0/8", "::1/128"} {
		var p Prefix
		_ = p.UnmarshalYAML(&yaml.Node{Kind: yaml.ScalarNode, Value: s})
		out = append(out, p)
	}
	return out
}

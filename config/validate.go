package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/bccguard/bccguard/config/yamlnode"
	"github.com/bccguard/bccguard/internal/lineend"
)

// validate checks the decoded configuration section by section and fills
// in the defaults that depend on other settings. Each section's method
// returns its errors, each with the line of the offending key; all of them
// are reported at once.
func (c *Config) validate() error {
	var errs []error
	for _, section := range []func() []error{
		c.validateHost,
		c.validateLog,
		c.validateAdmin,
		c.validateListeners,
		c.validateAuth,
		c.validateUpstream,
		c.validateQuarantine,
		c.validateQueue,
		c.validateDKIM,
		c.validateStore,
		c.validateRateLimits,
		c.validateNotify,
	} {
		errs = append(errs, section()...)
	}
	return errors.Join(errs...)
}

// errf is an error at the line of the key at path (map keys and list
// indexes), or of its nearest ancestor in the file.
func (c *Config) errf(path []any, format string, args ...any) error {
	return &yamlnode.Error{File: c.File, Line: yamlnode.Line(c.root, path...), Msg: fmt.Sprintf(format, args...)}
}

// errList collects a section's errors.
type errList []error

func (e *errList) add(err error) { *e = append(*e, err) }

func (c *Config) validateHost() []error {
	var errs errList
	if strings.TrimSpace(c.Hostname) == "" || strings.ContainsAny(c.Hostname, " \t\r\n") {
		errs.add(c.errf(path("hostname"), "hostname must be a host name without spaces"))
	}
	if c.DataDir == "" {
		errs.add(c.errf(path("data_dir"), "data_dir must not be empty"))
	}
	return errs
}

func (c *Config) validateLog() []error {
	var errs errList
	if c.Log.RedactAddresses == nil {
		on := true
		c.Log.RedactAddresses = &on
	}
	if _, err := ParseLogFormat(string(c.Log.Format)); err != nil {
		errs.add(c.errf(path("log", "format"), "log.format %v", err))
	}
	if _, err := ParseLogLevel(string(c.Log.Level)); err != nil {
		errs.add(c.errf(path("log", "level"), "log.level %v", err))
	}
	return errs
}

func (c *Config) validateAdmin() []error {
	var errs errList
	if c.Admin.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			errs.add(c.errf(path("admin", "listen"), "admin.listen %q: expected host:port", c.Admin.Listen))
		}
	}
	if u := c.Admin.PublicURL; u != "" {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.RawQuery != "" || pu.Fragment != "" {
			errs.add(c.errf(path("admin", "public_url"), "admin.public_url %q: expected the http(s) URL the review pages are reached at, such as https://bccguard.example.com", u))
		}
		c.Admin.PublicURL = strings.TrimRight(u, "/")
	}
	for i, tk := range c.Admin.Tokens {
		if tk.Name == "" || len(tk.SHA256) != 64 || strings.Trim(strings.ToLower(tk.SHA256), "0123456789abcdef") != "" {
			errs.add(c.errf(path("admin", "tokens", i), "admin token %d: needs a name and sha256 (64 hex digits: printf %%s TOKEN | sha256sum)", i+1))
		}
		if tk.Role != RoleViewer && tk.Role != RoleReviewer {
			errs.add(c.errf(path("admin", "tokens", i), "admin token %q: role must be viewer or reviewer", tk.Name))
		}
	}
	for i, u := range c.Admin.Users {
		if u.Name == "" || !strings.HasPrefix(u.PasswordHash, "$2") {
			errs.add(c.errf(path("admin", "users", i), "admin user %d: needs a name and a bcrypt password_hash", i+1))
		}
		if u.Role != RoleViewer && u.Role != RoleReviewer {
			errs.add(c.errf(path("admin", "users", i), "admin user %q: role must be viewer or reviewer", u.Name))
		}
	}
	return errs
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
	if lim.MaxMessageSize == 0 {
		lim.MaxMessageSize = d.MaxMessageSize
	}
	if lim.MaxRecipients == 0 {
		lim.MaxRecipients = d.MaxRecipients
	}
	if lim.MaxLineLength == 0 {
		lim.MaxLineLength = d.MaxLineLength
	}
	if lim.MaxLineLength < 1000 {
		errs.add(c.errf(at("max_line_length"), "listener %s: max_line_length must be at least 1000 (RFC 5321)", l.Name))
	}
	if lim.MaxHeaderSize == 0 {
		lim.MaxHeaderSize = d.MaxHeaderSize
	}
	if lim.MaxConnections == 0 {
		lim.MaxConnections = d.MaxConnections
	}
	if lim.CommandTimeout == 0 {
		lim.CommandTimeout = d.CommandTimeout
	}
	if lim.DataTimeout == 0 {
		lim.DataTimeout = d.DataTimeout
	}
	if lim.MaxRecipients < 0 || lim.MaxConnections < 0 {
		errs.add(c.errf(at(), "listener %s: limits must not be negative", l.Name))
	}
	return errs
}

func (c *Config) validateAuth() []error {
	var errs errList
	for i, u := range c.Auth.Users {
		if u.Name == "" || !strings.HasPrefix(u.PasswordHash, "$2") {
			errs.add(c.errf(path("auth", "users", i), "auth user %d: needs a name and a bcrypt password_hash (make one with: htpasswd -nBC 10 USER)", i+1))
		}
	}
	return errs
}

func (c *Config) validateUpstream() []error {
	var errs errList
	u := &c.Upstream
	if _, _, err := net.SplitHostPort(u.Address); err != nil {
		errs.add(c.errf(path("upstream", "address"), "upstream.address %q: expected host:port", u.Address))
	}
	if _, err := ParseUpstreamTLS(string(u.TLS)); err != nil {
		errs.add(c.errf(path("upstream", "tls"), "upstream.tls %v", err))
	}
	if (u.Username == "") != (u.PasswordFile == "") {
		errs.add(c.errf(path("upstream"), "upstream.username and upstream.password_file go together"))
	}
	if u.Connections < 1 || u.Connections > 1000 {
		errs.add(c.errf(path("upstream", "connections"), "upstream.connections must be between 1 and 1000"))
	}
	return errs
}

func (c *Config) validateQuarantine() []error {
	var errs errList
	q := &c.Quarantine
	if q.Retention <= 0 {
		errs.add(c.errf(path("quarantine", "retention"), "quarantine.retention must be positive"))
	}
	if _, err := ParseExpiryAction(string(q.ExpiryAction)); err != nil {
		errs.add(c.errf(path("quarantine", "expiry_action"), "quarantine.expiry_action %v", err))
	}
	return errs
}

func (c *Config) validateQueue() []error {
	var errs errList
	if c.Queue.RetryFirst <= 0 || c.Queue.RetryMax < c.Queue.RetryFirst || c.Queue.Lifetime <= 0 {
		errs.add(c.errf(path("queue"), "queue: need 0 < retry_first <= retry_max and lifetime > 0"))
	}
	return errs
}

// path spells the path to a key for errf: map keys and list indexes.
func path(keys ...any) []any { return keys }

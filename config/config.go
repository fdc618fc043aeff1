// Package config loads bccguard's YAML configuration: strict (unknown keys
// are errors), every error with its line number, and built-in defaults so
// that no file at all is a valid configuration.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file.
type Config struct {
	// Hostname is used in the SMTP greeting, Received: headers and DSNs.
	Hostname   string     `yaml:"hostname"`
	DataDir    string     `yaml:"data_dir"`
	Log        Log        `yaml:"log"`
	Admin      Admin      `yaml:"admin"`
	Listeners  []Listener `yaml:"listeners"`
	Auth       Auth       `yaml:"auth"`
	Upstream   Upstream   `yaml:"upstream"`
	Queue      Queue      `yaml:"queue"`
	Quarantine Quarantine `yaml:"quarantine"`
	DKIM       DKIM       `yaml:"dkim"`
	// Store selects the embedded store (default) or PostgreSQL.
	Store Store `yaml:"store"`
	// RateLimits bound how much each CRM (user, sender domain, network or
	// listener) may send per window.
	RateLimits []RateLimit `yaml:"rate_limits"`
	// Notify configures notifications about held mail.
	Notify Notify `yaml:"notify"`
	// Policy is decoded and checked by the policy package, which reports
	// its own errors with line numbers.
	Policy yaml.Node `yaml:"policy"`

	// File is the path the configuration was read from ("" for defaults).
	File string `yaml:"-"`
	root *yaml.Node
}

// Log configures logging.
type Log struct {
	Format string `yaml:"format"` // text or json
	Level  string `yaml:"level"`  // debug, info, warn, error
	// RedactAddresses (on by default) replaces addresses in logs with a
	// keyed hash, so logs do not become the next leak.
	RedactAddresses *bool `yaml:"redact_addresses"`
}

// Admin configures the admin HTTP listener and who may use its review API
// and pages. /metrics and the health checks need no credentials.
type Admin struct {
	Listen string `yaml:"listen"`
	// PublicURL is the URL the admin listener is reached at by reviewers
	// (https://bccguard.example.com, behind its proxy): notifications link
	// to the review pages under it.
	PublicURL string `yaml:"public_url"`
	// Tokens are API bearer tokens, kept as SHA-256 hashes.
	Tokens []AdminToken `yaml:"tokens"`
	// Users sign in to the review pages (and may use HTTP basic auth on
	// the API) with bcrypt password hashes.
	Users []AdminUser `yaml:"users"`
}

// Roles of admin credentials.
const (
	RoleViewer   = "viewer"   // read the quarantine and the audit log
	RoleReviewer = "reviewer" // also release and delete
)

// AdminToken is an API bearer token.
type AdminToken struct {
	Name string `yaml:"name"`
	// SHA256 is the hex SHA-256 of the token (printf %s TOKEN | sha256sum).
	SHA256 string `yaml:"sha256"`
	Role   string `yaml:"role"`
}

// AdminUser is a person who reviews the quarantine.
type AdminUser struct {
	Name         string `yaml:"name"`
	PasswordHash string `yaml:"password_hash"`
	Role         string `yaml:"role"`
}

// Quarantine configures how held messages are kept and reviewed.
type Quarantine struct {
	// Retention is how long a message stays held before it expires.
	Retention Duration `yaml:"retention"`
	// ExpiryAction is what happens at expiry: delete, or release (as
	// explode). Either way it is counted, logged and audited.
	ExpiryAction string `yaml:"expiry_action"`
	// FourEyesRules lists rules whose holds need two different reviewers
	// to release.
	FourEyesRules []string `yaml:"four_eyes_rules"`
	// DeleteNotice is the text sent to the sender when a reviewer deletes
	// a message and asks for the sender to be told.
	DeleteNotice string `yaml:"delete_notice"`
}

// Listener is one SMTP ingress endpoint.
type Listener struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
	// TLS is none, starttls or implicit.
	TLS     string `yaml:"tls"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// AllowNetworks may relay without AUTH.
	AllowNetworks []Prefix `yaml:"allow_networks"`
	// Auth offers SMTP AUTH (over TLS only) to clients on this listener.
	Auth *bool `yaml:"auth"`
	// BareNewlines is what happens to a bare CR or LF (not part of a
	// CRLF) in DATA or BDAT: reject (the default: 550 5.6.0 at the end of
	// the data) or normalize (each becomes CRLF).
	BareNewlines string `yaml:"bare_newlines"`
	Limits       Limits `yaml:"limits"`
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

// Auth holds the users who may relay after SMTP AUTH.
type Auth struct {
	Users         []User   `yaml:"users"`
	PasswordFiles []string `yaml:"password_files"`
}

// User is a relay user with a bcrypt password hash.
type User struct {
	Name         string `yaml:"name"`
	PasswordHash string `yaml:"password_hash"`
}

// Upstream is the MTA bccguard delivers to.
type Upstream struct {
	Address string `yaml:"address"`
	// Helo is the name bccguard gives in EHLO (default: Hostname).
	Helo string `yaml:"helo"`
	// TLS is none, opportunistic or required (required verifies the certificate).
	TLS           string `yaml:"tls"`
	TLSServerName string `yaml:"tls_server_name"`
	TLSCAFile     string `yaml:"tls_ca_file"`
	Username      string `yaml:"username"`
	PasswordFile  string `yaml:"password_file"`
	// Connections is the number of parallel upstream connections.
	Connections    int      `yaml:"connections"`
	ConnectTimeout Duration `yaml:"connect_timeout"`
	CommandTimeout Duration `yaml:"command_timeout"`
	// IdleTimeout closes a reused connection that has been idle this long.
	IdleTimeout Duration `yaml:"idle_timeout"`
}

// Queue configures retries.
type Queue struct {
	// RetryFirst is the delay before the first retry; it doubles up to RetryMax.
	RetryFirst Duration `yaml:"retry_first"`
	RetryMax   Duration `yaml:"retry_max"`
	// Lifetime is how long a message is retried before it bounces as expired.
	Lifetime Duration `yaml:"lifetime"`
}

// Defaults returns the built-in configuration: the one `bccguard serve` runs
// with when given no file.
func Defaults() *Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	return &Config{
		Hostname: host,
		DataDir:  "./data",
		Log:      Log{Format: "text", Level: "info"},
		Admin:    Admin{Listen: "127.0.0.1:9025"},
		Upstream: Upstream{
			Address:        "127.0.0.1:25",
			TLS:            "opportunistic",
			Connections:    8,
			ConnectTimeout: Duration(30 * time.Second),
			CommandTimeout: Duration(5 * time.Minute),
			IdleTimeout:    Duration(30 * time.Second),
		},
		// Postfix-like: minimal_backoff_time 300s, maximal_backoff_time
		// 4000s, maximal_queue_lifetime 5d.
		Queue: Queue{
			RetryFirst: Duration(5 * time.Minute),
			RetryMax:   Duration(time.Hour),
			Lifetime:   Duration(5 * 24 * time.Hour),
		},
		DKIM: DKIM{Verify: true},
		Quarantine: Quarantine{
			Retention:    Duration(30 * 24 * time.Hour),
			ExpiryAction: "delete",
			DeleteNotice: "Your message was not delivered. It was held by the mail policy because it would have shown its recipients to each other, and a reviewer deleted it. Please resend it to each recipient separately or through your mailing tool.",
		},
	}
}

// DefaultListener is the listener used when the configuration names none.
func DefaultListener() Listener {
	return Listener{Name: "smtp", Address: "127.0.0.1:2525", TLS: "none"}
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

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, b)
}

// Parse parses and validates configuration text; name is used in errors.
func Parse(name string, b []byte) (*Config, error) {
	c := Defaults()
	c.File = name
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlErr(name, err)
	}
	if len(root.Content) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil {
			return nil, yamlErr(name, err)
		}
		c.root = &root
	}
	c.File = name
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlErr turns yaml.v3's errors into Errors with file and line.
func yamlErr(name string, err error) error {
	var ce *Error
	if errors.As(err, &ce) {
		ce.File = name
		return ce
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var errs []error
		for _, m := range te.Errors {
			errs = append(errs, lineText(name, m))
		}
		return errors.Join(errs...)
	}
	return lineText(name, strings.TrimPrefix(err.Error(), "yaml: "))
}

func lineText(name, m string) error {
	m = strings.TrimSpace(m)
	if sm := yamlLine.FindStringSubmatch(m); sm != nil {
		n, _ := strconv.Atoi(sm[1])
		return &Error{File: name, Line: n, Msg: sm[2]}
	}
	return &Error{File: name, Msg: m}
}

// lineOf finds the line of the node at path (map keys and sequence indexes)
// so semantic errors can point at the offending line.
func (c *Config) lineOf(path ...any) int {
	n := c.root
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					next = n.Content[i+1]
					line = n.Content[i].Line
				}
			}
			if next == nil {
				return line
			}
			n = next
		case int:
			if n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				return line
			}
			n = n.Content[k]
			line = n.Line
		}
	}
	return line
}

func (c *Config) errf(path []any, format string, args ...any) error {
	return &Error{File: c.File, Line: c.lineOf(path...), Msg: fmt.Sprintf(format, args...)}
}

func (c *Config) validate() error {
	var errs []error
	add := func(e error) { errs = append(errs, e) }
	p := func(x ...any) []any { return x }

	if strings.TrimSpace(c.Hostname) == "" || strings.ContainsAny(c.Hostname, " \t\r\n") {
		add(c.errf(p("hostname"), "hostname must be a host name without spaces"))
	}
	if c.DataDir == "" {
		add(c.errf(p("data_dir"), "data_dir must not be empty"))
	}
	if c.Log.RedactAddresses == nil {
		on := true
		c.Log.RedactAddresses = &on
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add(c.errf(p("log", "format"), "log.format must be text or json, not %q", c.Log.Format))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add(c.errf(p("log", "level"), "log.level must be debug, info, warn or error, not %q", c.Log.Level))
	}
	if c.Admin.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			add(c.errf(p("admin", "listen"), "admin.listen %q: expected host:port", c.Admin.Listen))
		}
	}

	if len(c.Listeners) == 0 {
		c.Listeners = []Listener{DefaultListener()}
	}
	names := map[string]bool{}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		at := func(k ...any) []any { return append([]any{"listeners", i}, k...) }
		if l.Name == "" {
			l.Name = fmt.Sprintf("listener%d", i+1)
		}
		if names[l.Name] {
			add(c.errf(at("name"), "listener name %q is used twice", l.Name))
		}
		names[l.Name] = true
		if _, _, err := net.SplitHostPort(l.Address); err != nil {
			add(c.errf(at("address"), "listener %s: address %q: expected host:port", l.Name, l.Address))
		}
		if l.TLS == "" {
			l.TLS = "none"
		}
		switch l.TLS {
		case "none":
		case "starttls", "implicit":
			if l.TLSCert == "" || l.TLSKey == "" {
				add(c.errf(at("tls"), "listener %s: tls %s needs tls_cert and tls_key", l.Name, l.TLS))
			}
		default:
			add(c.errf(at("tls"), "listener %s: tls must be none, starttls or implicit, not %q", l.Name, l.TLS))
		}
		if l.AllowNetworks == nil {
			l.AllowNetworks = loopback()
		}
		if l.Auth == nil {
			on := l.TLS != "none"
			l.Auth = &on
		}
		if *l.Auth && l.TLS == "none" {
			add(c.errf(at("auth"), "listener %s: auth needs TLS (tls: starttls or implicit): passwords never cross the network in clear", l.Name))
		}
		switch l.BareNewlines {
		case "":
			l.BareNewlines = "reject"
		case "reject", "normalize":
		default:
			add(c.errf(at("bare_newlines"), "listener %s: bare_newlines must be reject or normalize, not %q", l.Name, l.BareNewlines))
		}
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
			add(c.errf(at("limits", "max_line_length"), "listener %s: max_line_length must be at least 1000 (RFC 5321)", l.Name))
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
			add(c.errf(at("limits"), "listener %s: limits must not be negative", l.Name))
		}
	}
	for i, u := range c.Auth.Users {
		if u.Name == "" || !strings.HasPrefix(u.PasswordHash, "$2") {
			add(c.errf(p("auth", "users", i), "auth user %d: needs a name and a bcrypt password_hash (make one with: htpasswd -nBC 10 USER)", i+1))
		}
	}

	u := &c.Upstream
	if _, _, err := net.SplitHostPort(u.Address); err != nil {
		add(c.errf(p("upstream", "address"), "upstream.address %q: expected host:port", u.Address))
	}
	switch u.TLS {
	case "none", "opportunistic", "required":
	default:
		add(c.errf(p("upstream", "tls"), "upstream.tls must be none, opportunistic or required, not %q", u.TLS))
	}
	if (u.Username == "") != (u.PasswordFile == "") {
		add(c.errf(p("upstream"), "upstream.username and upstream.password_file go together"))
	}
	if u.Connections < 1 || u.Connections > 1000 {
		add(c.errf(p("upstream", "connections"), "upstream.connections must be between 1 and 1000"))
	}
	q := &c.Quarantine
	if q.Retention <= 0 {
		add(c.errf(p("quarantine", "retention"), "quarantine.retention must be positive"))
	}
	switch q.ExpiryAction {
	case "delete", "release":
	default:
		add(c.errf(p("quarantine", "expiry_action"), "quarantine.expiry_action must be delete or release, not %q", q.ExpiryAction))
	}
	for i, tk := range c.Admin.Tokens {
		if tk.Name == "" || len(tk.SHA256) != 64 || strings.Trim(strings.ToLower(tk.SHA256), "0123456789abcdef") != "" {
			add(c.errf(p("admin", "tokens", i), "admin token %d: needs a name and sha256 (64 hex digits: printf %%s TOKEN | sha256sum)", i+1))
		}
		if tk.Role != RoleViewer && tk.Role != RoleReviewer {
			add(c.errf(p("admin", "tokens", i), "admin token %q: role must be viewer or reviewer", tk.Name))
		}
	}
	for i, u := range c.Admin.Users {
		if u.Name == "" || !strings.HasPrefix(u.PasswordHash, "$2") {
			add(c.errf(p("admin", "users", i), "admin user %d: needs a name and a bcrypt password_hash", i+1))
		}
		if u.Role != RoleViewer && u.Role != RoleReviewer {
			add(c.errf(p("admin", "users", i), "admin user %q: role must be viewer or reviewer", u.Name))
		}
	}
	if c.Queue.RetryFirst <= 0 || c.Queue.RetryMax < c.Queue.RetryFirst || c.Queue.Lifetime <= 0 {
		add(c.errf(p("queue"), "queue: need 0 < retry_first <= retry_max and lifetime > 0"))
	}
	errs = append(errs, c.validateDKIM()...)
	errs = append(errs, c.validateStore()...)
	errs = append(errs, c.validateRateLimits()...)
	errs = append(errs, c.validateNotify()...)
	return errors.Join(errs...)
}

func loopback() []Prefix {
	var out []Prefix
	for _, s := range []string{"127.0.0.0/8", "::1/128"} {
		var p Prefix
		_ = p.UnmarshalYAML(&yaml.Node{Kind: yaml.ScalarNode, Value: s})
		out = append(out, p)
	}
	return out
}

// Package config loads bccguard's YAML configuration: strict (unknown keys
// are errors), every error with its line number, and built-in defaults so
// that no file at all is a valid configuration.
package config

import (
	"fmt"
	"os"
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bccguard/bccguard/config/yamlnode"
	"github.com/bccguard/bccguard/internal/lineend"
)

// Config is the whole configuration file.
type Config struct {
	// Hostname is used in the SMTP greeting, Received: headers and DSNs.
	Hostname   string     `yaml:"hostname"`
	DataDir    string     `yaml:"data_dir"`
	Log        Log        `yaml:"log"`
	Admin      Admin      `yaml:"admin"`
	Listeners  []Listener `yaml:"listeners" item:"listener"`
	Auth       Auth       `yaml:"auth"`
	Upstream   Upstream   `yaml:"upstream"`
	Queue      Queue      `yaml:"queue"`
	Quarantine Quarantine `yaml:"quarantine"`
	DKIM       DKIM       `yaml:"dkim"`
	// Store selects the embedded store (default) or PostgreSQL.
	Store Store `yaml:"store"`
	// RateLimits bound how much each CRM (user, sender domain, network or
	// listener) may send per window.
	RateLimits []RateLimit `yaml:"rate_limits" item:"rate limit"`
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
	Format LogFormat `yaml:"format"` // text or json
	Level  LogLevel  `yaml:"level"`  // debug, info, warn, error
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
	Tokens []AdminToken `yaml:"tokens" item:"admin token"`
	// Users sign in to the review pages (and may use HTTP basic auth on
	// the API) with bcrypt password hashes.
	Users []AdminUser `yaml:"users" item:"admin user"`
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
	ExpiryAction ExpiryAction `yaml:"expiry_action"`
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

// Auth holds the users who may relay after SMTP AUTH.
type Auth struct {
	Users         []User   `yaml:"users" item:"auth user"`
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
	TLS           UpstreamTLS `yaml:"tls"`
	TLSServerName string      `yaml:"tls_server_name"`
	TLSCAFile     string      `yaml:"tls_ca_file"`
	Username      string      `yaml:"username"`
	PasswordFile  string      `yaml:"password_file"`
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
		Log:      Log{Format: LogText, Level: LogInfo},
		Admin:    Admin{Listen: "127.0.0.1:9025"},
		Upstream: Upstream{
			Address:        "127.0.0.1:25",
			TLS:            UpstreamTLSOpportunistic,
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
			ExpiryAction: ExpiryDelete,
			DeleteNotice: "Your message was not delivered. It was held by the mail policy because it would have shown its recipients to each other, and a reviewer deleted it. Please resend it to each recipient separately or through your mailing tool.",
		},
	}
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

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, b)
}

// Parse parses and validates configuration text; name is used in errors.
// The text is first checked against the types it is decoded into, so that
// an unknown key, a key given twice or a value of the wrong kind is an
// error in the file's words with its line (see config/yamlnode), then
// decoded, then validated section by section.
func Parse(name string, b []byte) (*Config, error) {
	c := Defaults()
	c.File = name
	root, err := yamlnode.Parse(name, b)
	if err != nil {
		return nil, err
	}
	if !yamlnode.IsNull(root) {
		d := &yamlnode.Decoder{File: name}
		d.Strict(root, reflect.TypeFor[Config](), "")
		if d.Failed() || !d.Decode(root, c) {
			return nil, d.Err()
		}
		c.root = root
	}
	c.File = name
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
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

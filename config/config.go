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

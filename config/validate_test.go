package config

import (
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/internal/lineend"
)

// sectionCase is one test of one section's validate method: a change to
// the defaults and the errors it must give ("" for none).
type sectionCase struct {
	name   string
	change func(c *Config)
	want   []string
}

// runSection runs each case on a fresh Defaults() with the section's
// method alone, as validate would call it.
func runSection(t *testing.T, method func(c *Config) []error, cases []sectionCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			c.File = "t.yaml"
			tc.change(c)
			errs := method(c)
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want %d: %q", errs, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %q, want it to contain %q", errs[i], w)
				}
			}
		})
	}
}

func TestValidateHost(t *testing.T) {
	runSection(t, (*Config).validateHost, []sectionCase{
		{"defaults", func(c *Config) {}, nil},
		{"space in hostname", func(c *Config) { c.Hostname = "a b" }, []string{"hostname must be a host name without spaces"}},
		{"no data dir", func(c *Config) { c.DataDir = "" }, []string{"data_dir must not be empty"}},
	})
}

func TestValidateLog(t *testing.T) {
	runSection(t, (*Config).validateLog, []sectionCase{
		{"defaults", func(c *Config) {}, nil},
		{"format", func(c *Config) { c.Log.Format = "xml" }, []string{`log.format must be text or json, not "xml"`}},
		{"level", func(c *Config) { c.Log.Level = "trace" }, []string{`log.level must be debug, info, warn or error, not "trace"`}},
	})
	c := Defaults()
	c.validateLog()
	if c.Log.RedactAddresses == nil || !*c.Log.RedactAddresses {
		t.Error("addresses are redacted unless the file says otherwise")
	}
}

func TestValidateAdmin(t *testing.T) {
	hash := strings.Repeat("a", 64)
	runSection(t, (*Config).validateAdmin, []sectionCase{
		{"defaults", func(c *Config) {}, nil},
		{"listen", func(c *Config) { c.Admin.Listen = "9025" }, []string{`admin.listen "9025": expected host:port`}},
		{"public url", func(c *Config) { c.Admin.PublicURL = "review.example" }, []string{`admin.public_url "review.example"`}},
		{"token", func(c *Config) { c.Admin.Tokens = []AdminToken{{Name: "a", SHA256: "short", Role: RoleViewer}} }, []string{"admin token 1: needs a name and sha256"}},
		{"token role", func(c *Config) { c.Admin.Tokens = []AdminToken{{Name: "a", SHA256: hash, Role: "admin"}} }, []string{`admin token "a": role must be viewer or reviewer`}},
		{"user", func(c *Config) { c.Admin.Users = []AdminUser{{Name: "a", PasswordHash: "x", Role: RoleReviewer}} }, []string{"admin user 1: needs a name and a bcrypt password_hash"}},
	})
	c := Defaults()
	c.Admin.PublicURL = "https://review.example/"
	if errs := c.validateAdmin(); len(errs) != 0 || c.Admin.PublicURL != "https://review.example" {
		t.Errorf("public_url %q, %v: want it without its trailing slash", c.Admin.PublicURL, errs)
	}
}

func TestValidateListeners(t *testing.T) {
	one := func(l Listener) func(c *Config) {
		return func(c *Config) { c.Listeners = []Listener{l} }
	}
	runSection(t, (*Config).validateListeners, []sectionCase{
		{"defaults", func(c *Config) {}, nil},
		{"address", one(Listener{Address: "2525"}), []string{`listener listener1: address "2525": expected host:port`}},
		{"tls", one(Listener{Address: "127.0.0.1:25", TLS: "STARTTLS"}), []string{`listener listener1: tls must be none, starttls or implicit, not "STARTTLS"`}},
		{"tls without cert", one(Listener{Address: "127.0.0.1:25", TLS: ListenerTLSImplicit}), []string{"listener listener1: tls implicit needs tls_cert and tls_key"}},
		{"auth without tls", one(Listener{Address: "127.0.0.1:25", Auth: new(true)}), []string{"listener listener1: auth needs TLS"}},
		{"bare newlines", one(Listener{Address: "127.0.0.1:25", BareNewlines: "allow"}), []string{`listener listener1: bare_newlines must be reject or normalize, not "allow"`}},
		{"short lines", one(Listener{Address: "127.0.0.1:25", Limits: Limits{MaxLineLength: 80}}), []string{"listener listener1: max_line_length must be at least 1000"}},
		{"negative limits", one(Listener{Address: "127.0.0.1:25", Limits: Limits{MaxConnections: -1}}), []string{"listener listener1: limits must not be negative"}},
		{"names twice", func(c *Config) {
			c.Listeners = []Listener{{Name: "a", Address: "127.0.0.1:25"}, {Name: "a", Address: "127.0.0.1:26"}}
		}, []string{`listener name "a" is used twice`}},
	})
	c := Defaults()
	c.Listeners = []Listener{{Address: "127.0.0.1:25", TLS: ListenerTLSStartTLS, TLSCert: "c", TLSKey: "k"}}
	if errs := c.validateListeners(); len(errs) != 0 {
		t.Fatal(errs)
	}
	l := c.Listeners[0]
	if l.Name != "listener1" || !*l.Auth || l.BareNewlines != lineend.Reject || len(l.AllowNetworks) != 2 ||
		l.Limits != DefaultLimits() {
		t.Errorf("defaults not filled in: %+v", l)
	}
}

func TestValidateAuth(t *testing.T) {
	runSection(t, (*Config).validateAuth, []sectionCase{
		{"none", func(c *Config) {}, nil},
		{"good", func(c *Config) { c.Auth.Users = []User{{Name: "crm", PasswordHash: "$2y$10$x"}} }, nil},
		{"clear password", func(c *Config) { c.Auth.Users = []User{{Name: "crm", PasswordHash: "secret"}} }, []string{"auth user 1: needs a name and a bcrypt password_hash"}},
	})
}

func TestValidateUpstream(t *testing.T) {
	runSection(t, (*Config).validateUpstream, []sectionCase{
		{"defaults", func(c *Config) {}, nil},
		{"address", func(c *Config) { c.Upstream.Address = "mx" }, []string{`upstream.address "mx": expected host:port`}},
		{"tls", func(c *Config) { c.Upstream.TLS = "may" }, []string{`upstream.tls must be none, opportunistic or required, not "may"`}},
		{"username alone", func(c *Config) { c.Upstream.Username = "u" }, []string{"upstream.username and upstream.password_file go together"}},
		{"connections", func(c *Config) { c.Upstream.Connections = 0 }, []string{"upstream.connections must be between 1 and 1000"}},
	})
}

func TestValidateQuarantine(t *testing.T) {
	runSection(t, (*Config).validateQuarantine, []sectionCase{
		{"defaults", func(c *Config) {}, nil},
		{"release", func(c *Config) { c.Quarantine.ExpiryAction = ExpiryRelease }, nil},
		{"retention", func(c *Config) { c.Quarantine.Retention = 0 }, []string{"quarantine.retention must be positive"}},
		{"expiry action", func(c *Config) { c.Quarantine.ExpiryAction = "keep" }, []string{`quarantine.expiry_action must be delete or release, not "keep"`}},
	})
}

func TestValidateQueue(t *testing.T) {
	runSection(t, (*Config).validateQueue, []sectionCase{
		{"defaults", func(c *Config) {}, nil},
		{"max below first", func(c *Config) { c.Queue.RetryMax = Duration(time.Second) }, []string{"queue: need 0 < retry_first <= retry_max and lifetime > 0"}},
		{"no lifetime", func(c *Config) { c.Queue.Lifetime = 0 }, []string{"queue: need 0 < retry_first"}},
	})
}

// The sections that have their own files keep their own tests (dkim_test,
// store_test, ratelimit_test, notify_test); these check they run alone.
func TestValidateOtherSections(t *testing.T) {
	runSection(t, (*Config).validateDKIM, []sectionCase{
		{"defaults", func(c *Config) {}, nil},
		{"resolver", func(c *Config) { c.DKIM.Resolver = "127.0.0.1" }, []string{"dkim.resolver"}},
	})
	runSection(t, (*Config).validateStore, []sectionCase{
		{"defaults", func(c *Config) {}, nil},
		{"backend", func(c *Config) { c.Store.Backend = "mysql" }, []string{`store.backend must be embedded or postgres, not "mysql"`}},
	})
	runSection(t, (*Config).validateRateLimits, []sectionCase{
		{"none", func(c *Config) {}, nil},
		{"key", func(c *Config) {
			c.RateLimits = []RateLimit{{Name: "a", Key: "ip", Per: RateWindow(time.Hour), Messages: 1}}
		}, []string{"rate limit a: key must be"}},
	})
	runSection(t, (*Config).validateNotify, []sectionCase{
		{"defaults", func(c *Config) {}, nil},
		{"workers", func(c *Config) { c.Notify.Workers = 1000 }, []string{"notify.workers must be between 1 and 100"}},
	})
}

package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bccguard/bccguard/config/yamlnode"
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

// validateHost checks the host name and the data folder.
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

// validateLog checks the log settings; addresses are redacted unless
// the file says otherwise.
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

// validateAuth checks the relay users given in the file (password_files
// are read, and checked, by the relay).
func (c *Config) validateAuth() []error {
	var errs errList
	for i, u := range c.Auth.Users {
		if u.Name == "" || !strings.HasPrefix(u.PasswordHash, "$2") {
			errs.add(c.errf(path("auth", "users", i), "auth user %d: needs a name and a bcrypt password_hash (make one with: htpasswd -nBC 10 USER)", i+1))
		}
	}
	return errs
}

// validateQuarantine checks how long holds are kept and what ends them.
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

// validateQueue checks the retry schedule.
func (c *Config) validateQueue() []error {
	var errs errList
	if c.Queue.RetryFirst <= 0 || c.Queue.RetryMax < c.Queue.RetryFirst || c.Queue.Lifetime <= 0 {
		errs.add(c.errf(path("queue"), "queue: need 0 < retry_first <= retry_max and lifetime > 0"))
	}
	return errs
}

// path spells the path to a key for errf: map keys and list indexes.
func path(keys ...any) []any { return keys }

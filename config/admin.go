package config

import (
	"net"
	"net/url"
	"strings"
)

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

// validateAdmin checks the admin listener and its credentials, and drops
// a trailing slash from public_url (links are built under it).
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

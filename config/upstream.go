package config

import "net"

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

// validateUpstream checks where and how bccguard delivers.
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

package config

import (
	"net/url"
	"strings"
	"time"
)

// Store selects and configures the durable store of the queue, the
// quarantine and the audit log.
type Store struct {
	// Backend is embedded (default) or postgres.
	Backend StoreBackend `yaml:"backend"`
	// DSN is the PostgreSQL connection string, as a URL
	// (postgres://user@host:5432/db?sslmode=verify-full) or key=value
	// pairs. Better without the password: see PasswordFile and PasswordEnv.
	DSN string `yaml:"dsn"`
	// PasswordFile holds the database password (read at each new
	// connection, so a rotated secret is picked up); PasswordEnv names an
	// environment variable holding it. At most one of them.
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// MinFree is the free space the embedded store keeps on data_dir's
	// filesystem for its own records: below it new mail gets 452 4.3.1
	// (0: the default, 4 MiB).
	MinFree Size `yaml:"min_free"`
	// MaxConns bounds the connections of this replica (default 10).
	MaxConns int `yaml:"max_conns"`
	// Lease is how long a claimed delivery stays reserved for the replica
	// working on it; a replica that dies has its work taken over this long
	// after it claimed it. 0 keeps the relay's default (15m). It must be
	// longer than an attempt can take (upstream connect_timeout plus
	// command timeouts), or a live replica's attempt may be repeated.
	Lease Duration `yaml:"lease"`
}

// DefaultStoreMaxConns is store.max_conns when not set.
const DefaultStoreMaxConns = 10

// minStoreLease is the shortest store.lease accepted.
const minStoreLease = time.Second

// validateStore checks the store section and fills in its defaults.
func (c *Config) validateStore() []error {
	var errs []error
	add := func(path []any, format string, args ...any) { errs = append(errs, c.errf(path, format, args...)) }
	p := func(x ...any) []any { return append([]any{"store"}, x...) }
	st := &c.Store
	if st.Backend == "" {
		st.Backend = StoreEmbedded
	}
	if st.MaxConns == 0 {
		st.MaxConns = DefaultStoreMaxConns
	}
	backend, err := ParseStoreBackend(string(st.Backend))
	switch backend {
	case StoreEmbedded:
		for _, f := range []struct{ key, val string }{{"dsn", st.DSN}, {"password_file", st.PasswordFile}, {"password_env", st.PasswordEnv}} {
			if f.val != "" {
				add(p(f.key), "store.%s is for backend postgres; this store is embedded (in data_dir)", f.key)
			}
		}
	case StorePostgres:
		if st.MinFree != 0 {
			add(p("min_free"), "store.min_free is for backend embedded (free space in data_dir); PostgreSQL manages its own")
		}
		switch {
		case strings.TrimSpace(st.DSN) == "":
			add(p("backend"), "store: backend postgres needs a dsn (e.g. postgres://bccguard@db.internal:5432/bccguard?sslmode=verify-full)")
		case !validDSN(st.DSN):
			add(p("dsn"), "store.dsn is not a PostgreSQL connection string: expected postgres://user@host:port/database?params or key=value pairs")
		}
		if st.PasswordFile != "" && st.PasswordEnv != "" {
			add(p("password_env"), "store: give the password with password_file or password_env, not both")
		}
		if (st.PasswordFile != "" || st.PasswordEnv != "") && dsnHasPassword(st.DSN) {
			add(p("dsn"), "store.dsn has a password, and password_%s gives another: keep one (preferably out of the DSN)",
				map[bool]string{true: "file", false: "env"}[st.PasswordFile != ""])
		}
		if st.PasswordEnv != "" && strings.ContainsAny(st.PasswordEnv, " =$") {
			add(p("password_env"), "store.password_env is the name of an environment variable, not %q", st.PasswordEnv)
		}
	default:
		add(p("backend"), "store.backend %v", err)
	}
	if st.MaxConns < 1 || st.MaxConns > 1000 {
		add(p("max_conns"), "store.max_conns must be between 1 and 1000")
	}
	if st.Lease != 0 && st.Lease.D() < minStoreLease {
		add(p("lease"), "store.lease must be at least %v", minStoreLease)
	}
	return errs
}

// validDSN accepts what pgx does: a postgres:// or postgresql:// URL, or
// key=value pairs.
func validDSN(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		return true
	}
	if strings.Contains(dsn, "://") {
		return false
	}
	for _, f := range strings.Fields(dsn) {
		if k, _, ok := strings.Cut(f, "="); !ok || k == "" {
			return false
		}
	}
	return strings.Contains(dsn, "=")
}

func dsnHasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		_, ok := u.User.Password()
		return ok
	}
	for _, f := range strings.Fields(dsn) {
		if strings.HasPrefix(f, "password=") {
			return true
		}
	}
	return false
}

package config

import (
	"strings"
	"testing"
	"time"
)

func TestStoreDefaults(t *testing.T) {
	c, err := Parse("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Backend != StoreEmbedded || c.Store.MaxConns != DefaultStoreMaxConns || c.Store.Lease != 0 {
		t.Fatalf("default store = %+v", c.Store)
	}
}

func TestStorePostgres(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`
store:
  backend: postgres
  dsn: postgres://bccguard@db.internal:5432/bccguard?sslmode=verify-full
  password_file: /run/secrets/pg
  max_conns: 20
  lease: 2m
`))
	if err != nil {
		t.Fatal(err)
	}
	st := c.Store
	if st.Backend != StorePostgres || st.MaxConns != 20 || st.Lease.D() != 2*time.Minute || st.PasswordFile != "/run/secrets/pg" {
		t.Fatalf("store = %+v", st)
	}
	if _, err := Parse("t.yaml", []byte("store: {backend: postgres, dsn: 'host=db user=bccguard dbname=bccguard', password_env: PGPASS}\n")); err != nil {
		t.Fatalf("key=value DSN: %v", err)
	}
}

func TestStoreErrorsHaveLines(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown backend", "store:\n  backend: mysql\n", "t.yaml:2: store.backend must be embedded or postgres"},
		{"postgres without dsn", "\nstore:\n  backend: postgres\n", "t.yaml:3: store: backend postgres needs a dsn"},
		{"bad dsn", "store:\n  backend: postgres\n  dsn: mysql://db/x\n", "t.yaml:3: store.dsn is not a PostgreSQL connection string"},
		{"dsn on embedded", "store:\n  dsn: postgres://db/x\n", "t.yaml:2: store.dsn is for backend postgres"},
		{"min_free on postgres", "store:\n  backend: postgres\n  dsn: postgres://db/x\n  min_free: 64MiB\n", "t.yaml:4: store.min_free is for backend embedded"},
		{"min_free not a size", "store:\n  min_free: lots\n", "t.yaml:2: invalid size"},
		{"two passwords", "store:\n  backend: postgres\n  dsn: postgres://db/x\n  password_file: /p\n  password_env: P\n", "t.yaml:5: store: give the password with password_file or password_env"},
		{"password twice", "store:\n  backend: postgres\n  dsn: postgres://u:secret@db/x\n  password_env: P\n", "t.yaml:3: store.dsn has a password"},
		{"bad env name", "store:\n  backend: postgres\n  dsn: postgres://db/x\n  password_env: $P\n", "t.yaml:4: store.password_env is the name"},
		{"max conns", "store:\n  backend: postgres\n  dsn: postgres://db/x\n  max_conns: -1\n", "t.yaml:4: store.max_conns must be"},
		{"short lease", "store:\n  lease: 10ms\n", "t.yaml:2: store.lease must be at least 1s"},
		{"unknown key", "store:\n  backend: postgres\n  url: postgres://db/x\n", `t.yaml:3: store: unknown key "url"; known keys: backend, dsn,`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

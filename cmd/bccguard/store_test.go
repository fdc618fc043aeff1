package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/postgres"
	"github.com/bccguard/bccguard/relay/store/postgres/pgtest"
)

// writeConfig writes a configuration file and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bccguard.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPostgresMigrateCommand(t *testing.T) {
	dsn := pgtest.Database(t, "bccguard_cmd")
	cfg := writeConfig(t, fmt.Sprintf("store: {backend: postgres, dsn: %q}\n", dsn))
	migrate := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"migrate"}, args...), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	v := postgres.SchemaVersion()
	if code, out := migrate("--config", cfg); code != 0 || !strings.Contains(out, fmt.Sprintf("schema version %d", v)) || !strings.Contains(out, "applied migration(s) 1") {
		t.Fatalf("first migrate: exit %d, %q", code, out)
	}
	if code, out := migrate("--config", cfg); code != 0 || out != fmt.Sprintf("schema is up to date (version %d)\n", v) {
		t.Fatalf("second migrate: exit %d, %q", code, out)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no config", nil, "migrate needs --config FILE"},
		{"embedded", []string{"--config", writeConfig(t, "store: {backend: embedded}\n")}, "has no schema to migrate"},
		{"password env unset", []string{"--config", writeConfig(t, fmt.Sprintf("store: {backend: postgres, dsn: %q, password_env: BCCGUARD_TEST_UNSET_PW}\n", dsn))}, "BCCGUARD_TEST_UNSET_PW is not set"},
	} {
		if code, out := migrate(tc.args...); code != exitUsage || !strings.Contains(out, tc.want) {
			t.Errorf("migrate, %s: exit %d, %q; want 2 and %q", tc.name, code, out, tc.want)
		}
	}
}

// TestPostgresOpenStore: the postgres backend locks the data folder
// against a second replica and applies store.lease to every claim.
func TestPostgresOpenStore(t *testing.T) {
	dsn := pgtest.Database(t, "bccguard_cmd")
	cfg, err := config.Parse("t.yaml", fmt.Appendf(nil, "data_dir: %q\nstore: {backend: postgres, dsn: %q, lease: 2s}\n", t.TempDir(), dsn))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	st, err := openStore(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := openStore(cfg, log); err == nil || !strings.Contains(err.Error(), "in use by another bccguard") {
		t.Fatalf("second openStore on one data_dir: %v", err)
	}

	sp, _, err := st.NewSpool(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sp.Write([]byte("Subject: x\r\n\r\nx\r\n"))
	if _, err := sp.Commit(context.Background(), store.Message{}, []store.NewDelivery{{Recipients: []store.Recipient{{Addr: "a@example.net"}}, Rewrite: store.RewritePass}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cs, err := st.Claim(context.Background(), "w", now, 1, 15*time.Minute)
	if err != nil || len(cs) != 1 {
		t.Fatal(cs, err)
	}
	if got := cs[0].LeaseUntil.Sub(now); got < time.Second || got > 3*time.Second {
		t.Fatalf("lease of %v, want store.lease (2s)", got)
	}

	st.Close()
	st2, err := openStore(cfg, log) // the folder is free again
	if err != nil {
		t.Fatalf("openStore after Close: %v", err)
	}
	st2.Close()
}

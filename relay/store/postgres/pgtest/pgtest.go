// Package pgtest gives tests a PostgreSQL database of their own: it creates
// one on the server named by BCCGUARD_TEST_POSTGRES (by default the one on
// 127.0.0.1:5432, user postgres, trust authentication, as CI machines
// provide) and drops it afterwards.
//
// A test that needs PostgreSQL fails when the server cannot be reached,
// with a message that says so; set BCCGUARD_SKIP_POSTGRES=1 to skip such
// tests instead on a machine without it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables the package reads.
const (
	// ServerEnv is the DSN of a role that may create databases; its
	// database part is where CREATE DATABASE runs.
	ServerEnv = "BCCGUARD_TEST_POSTGRES"
	// SkipEnv, set to 1, skips the tests that need PostgreSQL.
	SkipEnv = "BCCGUARD_SKIP_POSTGRES"
)

// DefaultServer is used when ServerEnv is not set.
const DefaultServer = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Server is the administrative DSN: ServerEnv or DefaultServer.
func Server() string {
	if s := os.Getenv(ServerEnv); s != "" {
		return s
	}
	return DefaultServer
}

// Skipped reports whether SkipEnv asks to skip PostgreSQL tests.
func Skipped() bool { return os.Getenv(SkipEnv) == "1" }

// Create creates an empty database named prefix_<random> and returns its
// DSN and a function that drops it (closing any connection still open to
// it). The error, when the server cannot be reached, says what to do.
func Create(prefix string) (dsn string, drop func() error, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, Server())
	if err != nil {
		return "", nil, fmt.Errorf("this test needs PostgreSQL, at %s (set %s to use another server, or %s=1 to skip; CI machines have it on 127.0.0.1:5432): %w",
			redact(Server()), ServerEnv, SkipEnv, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := strings.ToLower(prefix) + "_" + hex.EncodeToString(b)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, Server())
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
		return err
	}
	return withDatabase(Server(), name), drop, nil
}

// Database is Create for one test: skipped with SkipEnv=1, failed when the
// server cannot be reached, dropped when the test ends.
func Database(t testing.TB, prefix string) string {
	t.Helper()
	if Skipped() {
		t.Skipf("%s=1: skipping a test that needs PostgreSQL", SkipEnv)
	}
	dsn, drop, err := Create(prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	return dsn
}

// Schema creates a schema in the database of dsn and returns dsn with a
// search_path that puts everything in it: a fresh, empty store for each
// of many tests in one database.
func Schema(t testing.TB, dsn, name string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create schema %s: %v", name, err)
	}
	return withParam(dsn, "search_path", name)
}

// withDatabase returns dsn with its database replaced by name.
func withDatabase(dsn, name string) string {
	if u, ok := parseURL(dsn); ok {
		u.Path = "/" + name
		return u.String()
	}
	return dsn + " dbname=" + name // key=value form: the last one wins
}

// withParam returns dsn with a connection parameter set.
func withParam(dsn, key, value string) string {
	if u, ok := parseURL(dsn); ok {
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}

func parseURL(dsn string) (*url.URL, bool) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, false
	}
	return u, true
}

// redact hides a password in a URL DSN.
func redact(dsn string) string {
	u, ok := parseURL(dsn)
	if !ok {
		return "(a key=value DSN)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

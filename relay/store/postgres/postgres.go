// Package postgres is bccguard's store for several replicas: the queue, the
// quarantine and the audit log in one PostgreSQL database, with the same
// promises as the embedded store (the one conformance suite, storetest,
// runs against both).
//
// The schema (migrations/, applied by Open under an advisory lock):
//
//   - messages: one row per message, stored once however many deliveries
//     it has: the store.Message as JSON plus the columns queries need.
//   - message_chunks: the raw message as rows of 256 KiB of bytea (body.go
//     says why not large objects), deleted with the message.
//   - deliveries: one row per delivery with its state, attempt count, next
//     attempt and lease (lease_owner, leased_until, lease_session), with a
//     partial index of the due ones (next_attempt) and one by age.
//   - holds, hold_approvals: the review records of quarantined messages,
//     which outlive the messages; audit_log: the review audit log.
//   - heartbeat: the row Ping writes; schema_migrations: what was applied.
//
// Durability: Commit, Complete, Release, Discard and AddAudit return after
// PostgreSQL committed, with synchronous_commit on (a connection whose
// server default is off turns it on). Concurrent commits share WAL flushes
// (PostgreSQL's own group commit); each Commit costs one round trip for a
// small message, so nothing is added to the flush it waits for.
//
// Work is shared between replicas through leases in the deliveries rows:
// Claim takes due rows with FOR UPDATE SKIP LOCKED and writes its lease;
// a row under a live lease is not claimable, one whose lease has passed is
// (its holder died or hung), and Complete succeeds only for the row's
// current lease owner. Leases are durable and carry the store instance
// that took them: Close frees its instance's leases (the process is going
// away, so their attempts are over), while the leases of a replica that
// died are taken over when they end. A final outcome on a message's last
// pending delivery deletes the message in the same transaction. Times are
// the callers' clocks: replicas must keep their clocks in sync (NTP),
// which the default 15-minute lease makes a loose requirement.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bccguard/bccguard/relay/store"
)

// Defaults of Options.
const (
	DefaultMaxConns    = 10
	DefaultInlineLimit = 128 << 10
)

// Options configure a PostgreSQL store.
type Options struct {
	// DSN is the connection string, as a URL (postgres://user@host/db?...)
	// or key=value pairs; the standard PG* environment variables fill in
	// what it leaves out.
	DSN string
	// Password, when set, replaces the DSN's password. PasswordFile, when
	// set, is read at every new connection (so a rotated secret is used
	// without a restart); trailing newlines are ignored.
	Password     string
	PasswordFile string
	// MaxConns bounds the connection pool (0: DefaultMaxConns).
	MaxConns int
	// TempDir holds the bodies of messages larger than InlineLimit while
	// they are received (files removed as soon as they are created, so
	// nothing is left behind by a crash); "" is os.TempDir().
	TempDir string
	// InlineLimit: smaller bodies are held in memory until Commit (0:
	// DefaultInlineLimit; negative: every body goes to a temporary file).
	InlineLimit int
	// Logger receives migration and cleanup notices; nil discards them.
	Logger *slog.Logger
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// Store is the PostgreSQL store.Store and store.QuarantineStore. Create it
// with Open.
type Store struct {
	pool        *pgxpool.Pool
	log         *slog.Logger
	tempDir     string
	inlineLimit int
	name        string // who pings: host/pid
	session     string // this instance, in the leases it takes

	// life is held shared by every operation and exclusively by Close, so
	// Close waits for operations in flight and later ones see ErrClosed.
	life   sync.RWMutex
	closed bool
}

var (
	_ store.Store           = (*Store)(nil)
	_ store.QuarantineStore = (*Store)(nil)
)

// newPool parses the options into a connection pool (connections are made
// on demand).
func newPool(ctx context.Context, o Options) (*pgxpool.Pool, error) {
	if o.DSN == "" {
		return nil, errors.New("postgres: no DSN")
	}
	cfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		// pgconn's parse errors do not repeat the DSN (it may hold a password).
		return nil, fmt.Errorf("postgres: DSN: %w", err)
	}
	cfg.MaxConns = int32(DefaultMaxConns)
	if o.MaxConns > 0 {
		cfg.MaxConns = int32(o.MaxConns)
	}
	if o.Password != "" {
		cfg.ConnConfig.Password = o.Password
	}
	if file := o.PasswordFile; file != "" {
		cfg.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
			b, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("postgres password file: %w", err)
			}
			cc.Password = strings.TrimRight(string(b), "\r\n")
			return nil
		}
	}
	// A commit must be durable when it returns: a server (or role) default
	// of synchronous_commit=off is overridden for bccguard's sessions.
	// Stronger settings (remote_write, remote_apply) are kept.
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, `SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') = 'off'`)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, pgErr("connect", err)
	}
	return pool, nil
}

// Open connects, applies the schema migrations the database lacks (under
// an advisory lock, so replicas starting together do not race) and returns
// the store.
func Open(ctx context.Context, o Options) (*Store, error) {
	pool, err := newPool(ctx, o)
	if err != nil {
		return nil, err
	}
	s := &Store{
		pool:        pool,
		log:         o.logger(),
		tempDir:     o.TempDir,
		inlineLimit: o.InlineLimit,
	}
	if s.inlineLimit == 0 {
		s.inlineLimit = DefaultInlineLimit
	}
	host, _ := os.Hostname()
	s.name = fmt.Sprintf("%s/%d", host, os.Getpid())
	s.session = newMessageID()
	if _, err := migrate(ctx, pool, s.log); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// enter marks the start of an operation; leave must follow when it is nil.
func (s *Store) enter(ctx context.Context) error {
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		return store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		s.life.RUnlock()
		return err
	}
	return nil
}

func (s *Store) leave() { s.life.RUnlock() }

// Close waits for operations in flight, frees the leases this instance
// holds (so other replicas, or this one restarted, take the work over at
// once) and closes the connections. Spools not committed are lost.
// Closing twice is harmless.
func (s *Store) Close() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	defer s.pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.pool.Exec(ctx, `
		UPDATE deliveries SET lease_owner = NULL, leased_until = NULL, lease_session = NULL
		WHERE state IN ('queued', 'deferred', 'held') AND lease_session = $1`, s.session)
	if err != nil {
		// They end with their time, as a dead replica's do.
		s.log.Warn("freeing the leases of this instance failed", "err", err)
	}
	if err := s.freeNoticeLeases(ctx); err != nil {
		s.log.Warn("freeing the notification leases of this instance failed", "err", err)
	}
	return nil
}

// Ping checks that the database takes a write and commits it (a full disk,
// a read-only standby after a failover or a lost connection all fail it),
// for /readyz.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	tag, err := s.pool.Exec(ctx, `UPDATE heartbeat SET at = now(), by = $1 WHERE id = 1`, text(s.name))
	if err != nil {
		return pgErr("ping", err)
	}
	if tag.RowsAffected() != 1 {
		return errors.New("postgres: ping: the heartbeat row is missing")
	}
	return nil
}

// Stats summarises pending deliveries (from the pending-age index).
func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	if err := s.enter(ctx); err != nil {
		return store.Stats{}, err
	}
	defer s.leave()
	var (
		st     store.Stats
		oldest *time.Time
	)
	err := s.pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE state = 'deferred'), min(created_at),
			(SELECT count(*) FROM deliveries WHERE state = 'held')
		FROM deliveries WHERE state IN ('queued', 'deferred')`).Scan(&st.Pending, &st.Deferred, &oldest, &st.Held)
	if err != nil {
		return store.Stats{}, pgErr("stats", err)
	}
	if oldest != nil {
		st.Oldest = oldest.UTC()
	}
	return st, nil
}

// SQLSTATE codes bccguard tells apart.
const (
	codeDiskFull       = "53100" // disk_full
	codeUniqueViolated = "23505"
)

// pgErr wraps an error of operation op, adding store.ErrNoSpace when
// PostgreSQL (SQLSTATE 53100) or the local temporary folder is out of
// space, so the relay answers 452 and accepts again when space returns.
// nil stays nil.
func pgErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if isNoSpace(err) && !errors.Is(err, store.ErrNoSpace) {
		return fmt.Errorf("postgres: %s: %w: %w", op, store.ErrNoSpace, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

func isNoSpace(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == codeDiskFull {
		return true
	}
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// text makes s storable in a text column: PostgreSQL refuses NUL bytes
// and invalid UTF-8, which an upstream reply or a header can contain. They
// become U+FFFD, as encoding/json does in the JSON records. Filters go
// through it too, so they match what was stored.
func text(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// dbTime is t as PostgreSQL keeps it: UTC, microseconds, no monotonic
// clock reading. Times are cut before they are stored, so the JSON
// records and the columns agree.
func dbTime(t time.Time) time.Time {
	return t.UTC().Round(0).Truncate(time.Microsecond)
}

package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema is versioned by numbered files, migrations/NNNN_name.sql,
// embedded in the binary. Each is applied once, in its own transaction,
// and recorded in schema_migrations. A file is never edited once
// released: changes come as a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// migrations returns the embedded migrations in order; versions run from 1
// without gaps.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		v, _ := strconv.Atoi(m[1])
		out = append(out, migration{version: v, name: m[2], sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %04d_%s: expected version %d", m.version, m.name, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the schema version this build creates and expects.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// Lock classes of the advisory locks bccguard takes (the first key of
// pg_advisory_lock(int, int)); the second key is a hash of the schema, so
// installations in different schemas of one database do not wait on each
// other.
const (
	lockMigrate int32 = 0x62636701 // "bcg" 1
	lockAudit   int32 = 0x62636702 // "bcg" 2
)

// schemaKey is the SQL of the second advisory lock key.
const schemaKey = `hashtext(coalesce(current_schema(), ''))`

// MigrateResult says what Migrate did.
type MigrateResult struct {
	// Applied lists the versions applied now, in order.
	Applied []int
	// Version is the schema version after the run.
	Version int
}

// Migrate applies the migrations the database lacks. It holds a session
// advisory lock while it checks and applies, so replicas starting together
// apply each migration once: the others wait, then find nothing to do. A
// database with a newer schema than this build knows is refused.
func Migrate(ctx context.Context, opts Options) (MigrateResult, error) {
	pool, err := newPool(ctx, opts)
	if err != nil {
		return MigrateResult{}, err
	}
	defer pool.Close()
	return migrate(ctx, pool, opts.logger())
}

func migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (res MigrateResult, err error) {
	ms, err := migrations()
	if err != nil {
		return res, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return res, pgErr("migrate: connect", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, `+schemaKey+`)`, lockMigrate); err != nil {
		return res, pgErr("migrate: lock", err)
	}
	defer func() {
		// Unlocked explicitly: the connection goes back to the pool. If
		// that fails, closing the connection ends the session and its lock.
		if _, uerr := conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1, `+schemaKey+`)`, lockMigrate); uerr != nil {
			conn.Conn().Close(context.Background())
		}
	}()

	// Created only if missing: CREATE TABLE IF NOT EXISTS would need the
	// CREATE privilege even when the table is there.
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return res, pgErr("migrate: inspect", err)
	}
	if !exists {
		_, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`)
		if err != nil {
			return res, pgErr("migrate: create schema_migrations", err)
		}
	}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return res, pgErr("migrate: read versions", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return res, pgErr("migrate: read versions", err)
	}
	have := map[int]bool{}
	for _, v := range done {
		have[int(v)] = true
		res.Version = max(res.Version, int(v))
	}
	if latest := len(ms); res.Version > latest {
		return res, fmt.Errorf("postgres: the database schema is version %d, newer than this bccguard knows (%d): run the newer bccguard", res.Version, latest)
	}
	for _, m := range ms {
		if have[m.version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return res, pgErr(fmt.Sprintf("migrate: apply %04d_%s", m.version, m.name), err)
		}
		log.Info("applied schema migration", "version", m.version, "name", m.name)
		res.Applied = append(res.Applied, m.version)
		res.Version = m.version
	}
	if res.Version == 0 {
		return res, errors.New("postgres: migrate: no migrations")
	}
	return res, nil
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/embedded"
	"github.com/bccguard/bccguard/relay/store/postgres"
)

// storeOpenTimeout bounds connecting to PostgreSQL and migrating its schema
// at start.
const storeOpenTimeout = 2 * time.Minute

// openStore opens the store the configuration selects: the embedded one in
// the data folder (it locks the folder itself), or PostgreSQL, shared with
// other replicas, whose schema it migrates first. The data folder still
// holds this replica's control socket and redaction key, so it is locked
// for the postgres backend too: two replicas must not share one.
func openStore(cfg *config.Config, log *slog.Logger) (backend, error) {
	log = log.With("component", "store")
	var (
		st     backend
		unlock = func() {}
	)
	switch cfg.Store.Backend {
	case config.StorePostgres:
		var err error
		if unlock, err = lockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
		opts, err := postgresOptions(cfg)
		if err != nil {
			unlock()
			return nil, err
		}
		opts.Logger = log
		opts.TempDir = filepath.Join(cfg.DataDir, "tmp")
		if err := os.MkdirAll(opts.TempDir, 0o700); err != nil {
			unlock()
			return nil, fmt.Errorf("data dir: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
		defer cancel()
		p, err := postgres.Open(ctx, opts)
		if err != nil {
			unlock()
			return nil, err
		}
		log.Info("store opened", "backend", "postgres", "schema_version", postgres.SchemaVersion(), "max_conns", cfg.Store.MaxConns)
		st = p
	default:
		e, err := embedded.Open(cfg.DataDir, embedded.Options{Logger: log, MinFree: int64(cfg.Store.MinFree)})
		if err != nil {
			return nil, err
		}
		st = e
	}
	return &configuredStore{backend: st, lease: cfg.Store.Lease.D(), unlock: unlock}, nil
}

// backend is everything serve needs of a store: the queue, the review
// side, the queue commands and the rate limit counts. Both backends are
// all of it.
type backend interface {
	review.Store
	store.QueueAdmin
	store.RateCounter
}

// configuredStore applies store.lease to every claim (the relay's workers
// ask for their built-in lease) and releases the data folder on Close.
type configuredStore struct {
	backend
	lease  time.Duration // 0: as asked
	unlock func()
}

func (s *configuredStore) Claim(ctx context.Context, owner string, now time.Time, limit int, lease time.Duration) ([]store.Claimed, error) {
	if s.lease > 0 {
		lease = s.lease
	}
	return s.backend.Claim(ctx, owner, now, limit, lease)
}

func (s *configuredStore) Close() error {
	err := s.backend.Close()
	s.unlock()
	s.unlock = func() {}
	return err
}

// postgresOptions are the connection options of the store section; the
// password comes from the environment or a file (relative to the config
// file's folder), never from the command line.
func postgresOptions(cfg *config.Config) (postgres.Options, error) {
	st := cfg.Store
	o := postgres.Options{DSN: st.DSN, MaxConns: st.MaxConns}
	if name := st.PasswordEnv; name != "" {
		pw := os.Getenv(name)
		if pw == "" {
			return o, configError{fmt.Errorf("store.password_env: the environment variable %s is not set", name)}
		}
		o.Password = pw
	}
	if f := st.PasswordFile; f != "" {
		if !filepath.IsAbs(f) && cfg.File != "" {
			f = filepath.Join(filepath.Dir(cfg.File), f)
		}
		// Read now so a missing file fails at start; the store reads it
		// again for every new connection.
		if _, err := os.ReadFile(f); err != nil {
			return o, configError{fmt.Errorf("store.password_file: %w", err)}
		}
		o.PasswordFile = f
	}
	return o, nil
}

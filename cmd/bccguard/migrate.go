package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/store/postgres"
)

// migrateTimeout bounds `bccguard migrate` (waiting for another replica's
// migration included).
const migrateTimeout = 30 * time.Minute

// cmdMigrate applies the PostgreSQL schema migrations on their own, for
// deployments that migrate before rolling out (serve also applies them at
// start, under the same advisory lock).
func cmdMigrate(args []string, stdout io.Writer) error {
	fs := newFlags("migrate")
	cfgPath := fs.String("config", "", "configuration file with store.backend: postgres")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return usagef("migrate needs --config FILE")
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.Store.Backend != config.StorePostgres {
		return usagef("migrate: %s uses the %s store, which has no schema to migrate (migrate is for store.backend: postgres)", *cfgPath, cfg.Store.Backend)
	}
	opts, err := postgresOptions(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), migrateTimeout)
	defer cancel()
	res, err := postgres.Migrate(ctx, opts)
	if err != nil {
		return err
	}
	if len(res.Applied) == 0 {
		fmt.Fprintf(stdout, "schema is up to date (version %d)\n", res.Version)
		return nil
	}
	applied := make([]string, len(res.Applied))
	for i, v := range res.Applied {
		applied[i] = strconv.Itoa(v)
	}
	fmt.Fprintf(stdout, "applied migration(s) %s: schema version %d\n", strings.Join(applied, ", "), res.Version)
	return nil
}

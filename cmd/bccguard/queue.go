package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bccguard/bccguard/relay/control"
	"github.com/bccguard/bccguard/relay/store"
)

func cmdQueue(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("queue needs a subcommand: list or flush")
	}
	fs := newFlags("queue " + args[0])
	cfgPath := fs.String("config", "", "configuration file of the running relay")
	dataDir := fs.String("data-dir", "", "data folder of the running relay")
	asJSON := fs.Bool("json", false, "print JSON")
	state := fs.String("state", "", "only deliveries in this state (queued, deferred, ...)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	dir, err := resolveDataDir(*cfgPath, *dataDir)
	if err != nil {
		return err
	}
	var f store.Filter
	if *state != "" {
		for _, s := range strings.Split(*state, ",") {
			f.States = append(f.States, store.State(s))
		}
	}
	c := control.NewClient(dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch args[0] {
	case "list":
		ds, err := c.List(ctx, f)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(ds)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DELIVERY\tSTATE\tATTEMPTS\tNEXT ATTEMPT\tRECIPIENTS\tLAST ERROR")
		for _, d := range ds {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", d.ID, d.State, d.Attempts,
				d.NextAttempt.Local().Format(time.DateTime), len(d.Recipients), d.LastError)
		}
		return tw.Flush()
	case "flush":
		n, err := c.Flush(ctx, f)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d deferred deliveries scheduled for now\n", n)
		return nil
	}
	return usagef("unknown queue subcommand %q: list or flush", args[0])
}

// resolveDataDir finds the running relay's data folder from --data-dir or
// the configuration file (default: the built-in ./data).
func resolveDataDir(cfgPath, dataDir string) (string, error) {
	if dataDir != "" {
		return dataDir, nil
	}
	c, err := loadConfig(cfgPath)
	if err != nil {
		return "", err
	}
	return c.DataDir, nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bccguard/bccguard/relay/deliver"
	"github.com/bccguard/bccguard/relay/notify"
)

// errTestFailed: a channel did not take the test notification (exit 1).
var errTestFailed = errors.New("notify test: a channel failed")

func cmdNotify(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "test" {
		return usagef("usage: bccguard notify test --config FILE [--channel NAME] [--json]")
	}
	fs := newFlags("notify test")
	cfgPath := fs.String("config", "", "configuration file with the notify channels")
	channel := fs.String("channel", "", "test only this channel (default: every channel)")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *cfgPath == "" {
		return usagef("notify test needs --config FILE")
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := notify.SendTest(ctx, cfg, *channel, func(ctx context.Context, to string, write func(io.Writer) error) error {
		return deliver.SendNow(ctx, cfg, to, write)
	})
	if err != nil {
		return usagef("notify test: %v", err)
	}
	failed := false
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	}
	for _, r := range res {
		failed = failed || r.Error != ""
		if *asJSON {
			continue
		}
		if r.Error != "" {
			fmt.Fprintf(stdout, "%s (%s): FAILED after %v: %s\n", r.Channel, r.Type, r.Took.Round(time.Millisecond), r.Error)
		} else {
			fmt.Fprintf(stdout, "%s (%s): ok, sent in %v\n", r.Channel, r.Type, r.Took.Round(time.Millisecond))
		}
	}
	if failed {
		return errTestFailed
	}
	return nil
}

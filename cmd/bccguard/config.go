package main

import (
	"fmt"
	"io"

	"github.com/bccguard/bccguard/config"
)

// configError is an invalid configuration: exit code 2.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// loadConfig reads the file, or returns the built-in defaults when path is
// "". Every failure, a missing file included, is a configError (exit 2).
func loadConfig(path string) (*config.Config, error) {
	var c *config.Config
	var err error
	if path == "" {
		c, err = config.Parse("", nil)
	} else {
		c, err = config.Load(path)
	}
	if err != nil {
		return nil, configError{err}
	}
	return c, nil
}

func cmdCheckConfig(args []string, stdout io.Writer) error {
	fs := newFlags("check-config")
	path := fs.String("config", "", "configuration file to check")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usagef("check-config needs --config FILE")
	}
	c, err := loadConfig(*path)
	if err != nil {
		return err
	}
	p, err := loadPolicy(c)
	if err != nil {
		return err
	}
	pol := "its own policy"
	if p.Builtin() {
		pol = "the built-in policy"
	}
	fmt.Fprintf(stdout, "%s: ok (%d listener(s), upstream %s, data dir %s, %s)\n", *path, len(c.Listeners), c.Upstream.Address, c.DataDir, pol)
	return nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// cmdHealthcheck asks a running relay's admin listener whether it is alive
// (/healthz) or, with --ready, ready (/readyz), and exits 0 or 1. It is the
// container HEALTHCHECK: the distroless image has no curl or wget.
func cmdHealthcheck(args []string, stdout io.Writer) error {
	fs := newFlags("healthcheck")
	cfgPath := fs.String("config", "", "configuration file whose admin.listen to ask (default: built-in defaults)")
	addr := fs.String("admin", "", "admin listener host:port (overrides the configuration's)")
	ready := fs.Bool("ready", false, "check /readyz (store, policy, listeners) instead of /healthz")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a := *addr
	if a == "" {
		cfg, err := loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		if a = cfg.Admin.Listen; a == "" {
			return usagef("healthcheck: the admin listener is disabled (admin.listen is empty)")
		}
	}
	target, err := healthTarget(a)
	if err != nil {
		return usagef("healthcheck: %v", err)
	}
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+target+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s: %s: %s", req.URL, resp.Status, body)
	}
	fmt.Fprintf(stdout, "%s", body)
	return nil
}

// healthTarget turns a listen address into one to connect to: a wildcard
// host (0.0.0.0, ::, none) means this machine's loopback.
func healthTarget(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port", listen)
	}
	switch ip := net.ParseIP(host); {
	case host == "" || (ip != nil && ip.IsUnspecified() && ip.To4() != nil):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}

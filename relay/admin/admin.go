// Package admin serves bccguard's admin HTTP listener: Prometheus metrics,
// the health checks, the review API under /api/v1 and the review pages,
// and the authentication in front of all but the first three.
package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bccguard/bccguard/relay/review"
)

// Check is one readiness check; it returns nil when healthy.
type Check func(ctx context.Context) error

// Options say what the admin listener serves.
type Options struct {
	// Gatherer is served at /metrics.
	Gatherer prometheus.Gatherer
	// Checks must all pass for /readyz.
	Checks map[string]Check
	// Reports are shown in /readyz's answer but never make it fail (the
	// upstream's state: the queue absorbs an outage).
	Reports map[string]func(context.Context) string
	// Auth identifies callers of everything but /metrics, /healthz and
	// /readyz; nil (or one with no authenticators) refuses them all.
	Auth *Auth
	// API, if set, is served at /api/v1/ behind Auth, with the prefix
	// stripped (review.NewHandler's routes are relative).
	API http.Handler
	// Pages, if set, is served at /quarantine and below. It is NOT behind
	// Auth, because its sign-in form must be reachable without
	// credentials: it authenticates itself (Auth.Identify, Auth.Require).
	Pages http.Handler
}

// NewHandler returns the admin listener's handler: /metrics, /healthz
// (the process answers), /readyz (every check passes), the API and the
// pages. Any other path needs credentials before it is told 404, so an
// unauthenticated caller learns nothing about what exists. State-changing
// cross-origin requests from browsers are refused everywhere
// (http.CrossOriginProtection), a first line of defence against CSRF for
// credentials a browser sends on its own (Basic, cookies).
func NewHandler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		status := map[string]string{}
		code := http.StatusOK
		for name, c := range o.Checks {
			if err := c(ctx); err != nil {
				status[name] = err.Error()
				code = http.StatusServiceUnavailable
			} else {
				status[name] = "ok"
			}
		}
		for name, rep := range o.Reports {
			status[name] = rep(ctx)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(status)
	})
	if o.API != nil {
		mux.Handle("/api/v1/", o.Auth.Require(http.StripPrefix("/api/v1", o.API)))
	}
	if o.Pages != nil {
		mux.Handle("/quarantine", o.Pages)
		mux.Handle("/quarantine/", o.Pages)
	}
	mux.Handle("/", o.Auth.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		review.WriteError(w, &review.Error{Code: review.CodeNotFound, Message: "not found: " + r.URL.Path})
	})))
	return http.NewCrossOriginProtection().Handler(mux)
}

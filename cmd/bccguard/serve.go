package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay"
	"github.com/bccguard/bccguard/relay/admin"
	"github.com/bccguard/bccguard/relay/auth"
	"github.com/bccguard/bccguard/relay/control"
	"github.com/bccguard/bccguard/relay/limit"
	"github.com/bccguard/bccguard/relay/notify"
	"github.com/bccguard/bccguard/relay/queueadmin"
	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/review/web"
)

// shutdownGrace is how long sessions get to finish after SIGTERM.
const shutdownGrace = 30 * time.Second

func cmdServe(args []string, stderr io.Writer) error {
	fs := newFlags("serve")
	cfgPath := fs.String("config", "", "configuration file (default: built-in defaults)")
	listen := fs.String("listen", "", "address of the SMTP listener (overrides the first listener's)")
	upstreamAddr := fs.String("upstream", "", "upstream MTA host:port")
	dataDir := fs.String("data-dir", "", "data folder")
	adminListen := fs.String("admin-listen", "", "admin HTTP listener host:port")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Listeners[0].Address = *listen
	}
	if *upstreamAddr != "" {
		cfg.Upstream.Address = *upstreamAddr
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if *adminListen != "" {
		cfg.Admin.Listen = *adminListen
	}
	for _, a := range []string{cfg.Listeners[0].Address, cfg.Upstream.Address, cfg.Admin.Listen} {
		if _, _, err := net.SplitHostPort(a); a != "" && err != nil {
			return usagef("serve: %q is not host:port", a)
		}
	}
	log := newLogger(cfg.Log, stderr)
	return serve(cfg, log, *cfgPath)
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(cfg *config.Config, log *slog.Logger, cfgPath string) error {
	pol, err := loadPolicy(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	st, err := openStore(cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()

	var redactKey []byte
	if *cfg.Log.RedactAddresses {
		if redactKey, err = loadRedactKey(cfg.DataDir); err != nil {
			return err
		}
	}
	var users relay.Authenticator
	if len(cfg.Auth.Users) > 0 || len(cfg.Auth.PasswordFiles) > 0 {
		list := make([]auth.User, len(cfg.Auth.Users))
		for i, u := range cfg.Auth.Users {
			list[i] = auth.User{Name: u.Name, PasswordHash: u.PasswordHash}
		}
		u, err := auth.NewUsers(list, cfg.Auth.PasswordFiles)
		if err != nil {
			return configError{err}
		}
		users = authenticator{u}
	}

	// Admin credentials are checked before anything listens. The review
	// pages sign users in with adminUsers.Verify and add their session
	// cookie to authn.
	adminTokens, err := admin.NewTokenAuth(cfg.Admin.Tokens)
	if err != nil {
		return configError{err}
	}
	adminUsers, err := admin.NewBasicAuth(cfg.Admin.Users)
	if err != nil {
		return configError{err}
	}
	authn := admin.NewAuth(adminTokens, adminUsers)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bccguard_build_info", Help: "Build information; the value is always 1.",
	}, []string{"version", "goversion"})
	reg.MustRegister(buildInfo)
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)

	// One guard throttles failed admin sign-ins for the form, Basic and
	// tokens alike, and audits the names and addresses it starts to hold.
	guard := admin.NewGuard(admin.GuardOptions{Registerer: reg, Audit: st.AddAudit})
	adminTokens.SetGuard(guard)
	adminUsers.SetGuard(guard)

	limits, err := limit.New(limit.Options{Limits: cfg.RateLimits, Counter: st, Registerer: reg, Logger: log.With("component", "limit")})
	if err != nil {
		return err
	}
	// The notifications are made by the relay and the review service and
	// sent by their own workers; the two it calls back are set below.
	var (
		srv *relay.Server
		rev *review.Service
	)
	notes, err := notify.New(notify.Options{
		Config: cfg, Store: st, Logger: log.With("component", "notify"), Registerer: reg,
		WakeDelivery: func() { srv.Wake() },
		Held:         func(ctx context.Context) (*notify.Digest, error) { return rev.Digest(ctx) },
	})
	if err != nil {
		return configError{err}
	}
	srv, err = relay.New(relay.Options{
		Config: cfg, Store: st, Logger: log, Registerer: reg, Users: users, RedactKey: redactKey,
		Policy: pol, Limits: limits, Notify: notes,
	})
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	rev, err = newReview(cfg, st, log, reg, srv.Wake, srv.RedactText, notes)
	if err != nil {
		return err
	}
	rev.Start(ctx)
	defer rev.Stop()
	notes.Start(ctx)
	defer notes.Stop()

	ctl, err := control.Listen(cfg.DataDir)
	if err != nil {
		return err
	}
	queue, err := queueadmin.New(queueadmin.Options{
		Store: st, Logger: log.With("component", "queue"), Registerer: reg, Hostname: cfg.Hostname,
		Wake: srv.Wake, Redact: srv.RedactText,
	})
	if err != nil {
		return err
	}
	ctlSrv := control.NewServer(control.NewHandler(queue, rev))
	go func() { _ = ctlSrv.Serve(ctl) }()
	defer ctlSrv.Close()

	if cfg.Admin.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
		// The review pages at /quarantine; their session cookie is accepted by the API too.
		pages, err := web.New(web.Options{Service: rev, Users: adminUsers, Stats: st.HoldStats, Logger: log.With("component", "web")})
		if err != nil {
			return err
		}
		authn.Add(pages)
		mux := admin.NewHandler(admin.Options{
			Gatherer: reg, Checks: map[string]admin.Check{"store": st.Ping, "policy": srv.PolicyReady, "listeners": srv.ListenersReady},
			// The upstream is reported, never a reason to be unready: the queue absorbs an outage.
			Reports: map[string]func(context.Context) string{"upstream": srv.UpstreamStatus},

			Auth: authn, API: apiHandler(rev, queue), Pages: pages,
		})
		adm := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = adm.Serve(ln) }()
		defer adm.Close()
		log.Info("admin listening", "address", ln.Addr().String())
	}
	// SMTP opens last: once a client can connect, the admin listener and
	// the control socket answer too.
	if err := srv.Start(ctx); err != nil {
		return err
	}
	log.Info("bccguard ready", "version", version, "data_dir", cfg.DataDir, "upstream", cfg.Upstream.Address)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			log.Info("SIGHUP: reloading")
			reload(srv, users, cfgPath, log)
			continue
		}
		log.Info("shutting down", "signal", sig.String())
		break
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	_ = srv.Shutdown(sctx)
	log.Info("stopped")
	return nil
}

// reload re-reads the policy from the configuration file and the password
// files. Anything invalid is refused and logged; what was in force stays.
func reload(srv *relay.Server, users relay.Authenticator, cfgPath string, log *slog.Logger) {
	if a, ok := users.(authenticator); ok {
		if err := a.Reload(); err != nil {
			log.Error("reload of password files failed; keeping the old ones", "err", err)
		}
	}
	if cfgPath == "" {
		return
	}
	cfg, err := config.Load(cfgPath)
	if err == nil {
		var p *policy.Policy
		if p, err = policy.Load(&cfg.Policy, cfg.File); err == nil {
			srv.SetPolicy(p)
			srv.PolicyReloaded(cfg.File, nil)
			log.Info("policy reloaded", "builtin", p.Builtin())
			return
		}
	}
	srv.PolicyReloaded(cfgPath, err)
	log.Error("policy reload refused; keeping the old policy", "err", err)
}

// apiHandler is the admin listener's /api/v1: the queue's routes
// (/queue...) and the review API's (everything else, its 404s included).
func apiHandler(rev *review.Service, queue *queueadmin.Service) http.Handler {
	mux := http.NewServeMux()
	q := queueadmin.NewHandler(queue)
	mux.Handle("/queue", q)
	mux.Handle("/queue/", q)
	mux.Handle("/", review.NewHandler(rev))
	return mux
}

// newReview builds the quarantine review service over the store.
func newReview(cfg *config.Config, st review.Store, log *slog.Logger, reg prometheus.Registerer, wake func(), redact func(string) string, notes review.Notifier) (*review.Service, error) {
	return review.New(review.Options{
		Store: st, Config: cfg.Quarantine, Logger: log.With("component", "review"),
		Registerer: reg, Hostname: cfg.Hostname, Wake: wake, Redact: redact, Notify: notes,
	})
}

// authenticator adapts auth.Users to the relay's Authenticator.
type authenticator struct{ *auth.Users }

func (authenticator) Mechanisms() []string { return auth.Mechanisms() }
func (authenticator) NewServer(mech string, verify func(user, pass string) error) (sasl.Server, error) {
	return auth.NewServer(mech, verify)
}

// loadRedactKey returns the key for hashing addresses in logs, made on
// first start and kept in the data folder so tokens stay stable.
func loadRedactKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, "redact.key")
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("redact key: %w", err)
	}
	b = make([]byte, 32)
	_, _ = rand.Read(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("redact key: %w", err)
	}
	return b, nil
}

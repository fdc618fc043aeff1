package relay

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// upstreamProbeEvery is how long the upstream may go untouched before
// bccguard checks it itself. Deliveries keep bccguard_upstream_up current
// while mail flows; an idle relay (and one just started) would otherwise
// report a state that is stale, or 0 before the first delivery, and the
// "upstream unreachable" alert would fire on every quiet relay.
const upstreamProbeEvery = time.Minute

// upstreamState is the bccguard_upstream_up gauge together with what
// /readyz reports: every Set (from a delivery attempt or a probe) records
// the state and when it was seen.
type upstreamState struct {
	prometheus.Gauge
	log  *slog.Logger
	addr string

	mu    sync.Mutex
	known bool
	up    bool
	since time.Time // when the state last changed
	seen  time.Time // when it was last observed
	err   string    // the last probe's error while down
}

// Set is called by delivery attempts: 1 connected, 0 did not.
func (u *upstreamState) Set(v float64) { u.observe(v == 1, "") }

func (u *upstreamState) observe(up bool, errText string) {
	v := 0.0
	if up {
		v = 1
	}
	u.Gauge.Set(v)
	now := time.Now()
	u.mu.Lock()
	changed := !u.known || u.up != up
	if changed {
		u.since = now
	}
	u.known, u.up, u.seen = true, up, now
	if up {
		u.err = ""
	} else if errText != "" {
		u.err = errText
	}
	u.mu.Unlock()
	switch {
	case changed && up:
		u.log.Info("upstream reachable", "upstream", u.addr)
	case changed:
		u.log.Warn("upstream unreachable; accepted mail stays queued", "upstream", u.addr, "err", errText)
	}
}

// stale reports whether the state is unknown or older than d.
func (u *upstreamState) stale(d time.Duration) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return !u.known || time.Since(u.seen) >= d
}

func (u *upstreamState) status() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case !u.known:
		return "unknown: not checked yet"
	case u.up:
		return fmt.Sprintf("up since %s", u.since.UTC().Format(time.RFC3339))
	case u.err != "":
		return fmt.Sprintf("down since %s: %s", u.since.UTC().Format(time.RFC3339), u.err)
	default:
		return fmt.Sprintf("down since %s", u.since.UTC().Format(time.RFC3339))
	}
}

// watchUpstream checks the upstream at start and whenever no delivery has
// touched it for upstreamProbeEvery, with the connection a delivery would
// use (EHLO, STARTTLS, AUTH as configured) and then QUIT.
func (s *Server) watchUpstream(ctx context.Context) {
	t := time.NewTicker(upstreamProbeEvery / 4)
	defer t.Stop()
	for {
		if s.ops.up.stale(upstreamProbeEvery) {
			s.probeUpstream(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) probeUpstream(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.Upstream.ConnectTimeout.D()+30*time.Second)
	defer cancel()
	c, err := s.delivery.up.dial(pctx)
	if ctx.Err() != nil {
		if c != nil {
			c.Close()
		}
		return
	}
	if err != nil {
		s.ops.up.observe(false, safeText(err.Error(), 300))
		return
	}
	c.Close()
	s.ops.up.observe(true, "")
}

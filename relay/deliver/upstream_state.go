package deliver

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/internal/oneline"
)

// upstreamProbeEvery is how long the upstream may go untouched before
// bccguard checks it itself. Deliveries keep bccguard_upstream_up current
// while mail flows; an idle relay (and one just started) would otherwise
// report a state that is stale, or 0 before the first delivery, and the
// "upstream unreachable" alert would fire on every quiet relay.
const upstreamProbeEvery = time.Minute

// upstreamState is whether the upstream can be reached, as the last
// delivery attempt or probe found it. Each observation updates, together,
// the bccguard_upstream_up gauge, the log (on a change) and what /readyz
// reports.
type upstreamState struct {
	gauge prometheus.Gauge
	log   *slog.Logger
	addr  string

	mu    sync.Mutex
	known bool
	up    bool
	since time.Time // when the state last changed
	seen  time.Time // when it was last observed
	err   string    // the last error while down
}

func newUpstreamState(gauge prometheus.Gauge, log *slog.Logger, addr string) *upstreamState {
	return &upstreamState{gauge: gauge, log: log, addr: addr}
}

// observe records that the upstream was reached (up) or not, and why not;
// reason "" keeps the last one known.
func (u *upstreamState) observe(up bool, reason string) {
	v := 0.0
	if up {
		v = 1
	}
	u.gauge.Set(v)
	now := time.Now()
	u.mu.Lock()
	changed := !u.known || u.up != up
	if changed {
		u.since = now
	}
	u.known, u.up, u.seen = true, up, now
	if up {
		u.err = ""
	} else if reason != "" {
		u.err = reason
	}
	u.mu.Unlock()
	switch {
	case changed && up:
		u.log.Info("upstream reachable", "upstream", u.addr)
	case changed:
		u.log.Warn("upstream unreachable; accepted mail stays queued", "upstream", u.addr, "err", reason)
	}
}

// stale reports whether the state is unknown or older than d.
func (u *upstreamState) stale(d time.Duration) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return !u.known || time.Since(u.seen) >= d
}

// status is the state in words, for /readyz.
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
func (d *Deliverer) watchUpstream(ctx context.Context) {
	defer d.wg.Done()
	t := time.NewTicker(upstreamProbeEvery / 4)
	defer t.Stop()
	for {
		if d.upstream.stale(upstreamProbeEvery) {
			d.probeUpstream(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Deliverer) probeUpstream(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, d.probeLimit)
	defer cancel()
	c, err := d.dialer.Dial(pctx)
	if ctx.Err() != nil {
		if c != nil {
			c.Close()
		}
		return
	}
	if err != nil {
		d.upstream.observe(false, oneline.ASCII(err.Error(), 300))
		return
	}
	c.Close()
	d.upstream.observe(true, "")
}

package notify

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/store"
)

// housekeepEvery is how often digests are looked at (and, every hour, the
// outbox purged).
const housekeepEvery = time.Minute

// housekeeping queues each channel's digest once per period and purges the
// notifications done long ago.
func (s *Service) housekeeping(ctx context.Context) {
	defer s.wg.Done()
	done := map[string]time.Time{} // channel -> the period last dealt with
	var purged time.Time
	t := time.NewTicker(housekeepEvery)
	defer t.Stop()
	for {
		now := s.now()
		s.queueDigests(ctx, now, done)
		if now.Sub(purged) >= time.Hour {
			if n, err := s.st.PurgeNotifications(ctx, now.Add(-keepFor)); err != nil {
				if ctx.Err() == nil {
					s.log.Warn("notify: purging old notifications failed", "err", err)
				}
			} else {
				purged = now
				if n > 0 {
					s.log.Debug("notify: purged old notifications", "count", n)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// periodStart is the start of the digest period of ch that now is in.
func periodStart(ch config.NotifyChannel, now time.Time) time.Time {
	now = now.UTC()
	if ch.Digest == config.DigestHourly {
		return now.Truncate(time.Hour)
	}
	h, _ := strconv.Atoi(ch.DigestAt[:2])
	m, _ := strconv.Atoi(ch.DigestAt[3:])
	start := time.Date(now.Year(), now.Month(), now.Day(), h, m, 0, 0, time.UTC)
	if start.After(now) {
		start = start.AddDate(0, 0, -1)
	}
	return start
}

// queueDigests queues the digest of every channel whose period began since
// it was last dealt with. The key names channel and period, so of several
// replicas (or a restart within the period) one digest is queued. An
// empty quarantine sends none.
func (s *Service) queueDigests(ctx context.Context, now time.Time, done map[string]time.Time) {
	if s.held == nil {
		return
	}
	var d *Digest
	for _, ch := range s.digests {
		start := periodStart(ch, now)
		if done[ch.Name].Equal(start) {
			continue
		}
		if d == nil {
			var err error
			if d, err = s.held(ctx); err != nil {
				if ctx.Err() == nil {
					s.log.Warn("notify: reading the quarantine for a digest failed; trying again", "err", err)
				}
				return
			}
		}
		if d.Held > 0 {
			if err := s.queueDigest(ctx, ch, *d, start, now); err != nil {
				s.log.Warn("notify: queueing a digest failed; trying again", "channel", ch.Name, "err", err)
				continue
			}
		}
		done[ch.Name] = start
	}
}

func (s *Service) queueDigest(ctx context.Context, ch config.NotifyChannel, d Digest, start, now time.Time) error {
	d.Period = string(ch.Digest)
	d.Items = append([]DigestItem(nil), d.Items...)
	for i := range d.Items {
		d.Items[i].Subject = SafeText(d.Items[i].Subject, MaxSubject)
		d.Items[i].Link = s.notifier.ReviewLink(d.Items[i].QueueID)
	}
	ev := Event{Event: EventDigest, At: now.UTC(), Host: s.host, Digest: &d, Link: s.notifier.listLink()}
	ev.Text = summary(&ev)
	payload, err := json.Marshal(&ev)
	if err != nil {
		return err
	}
	key := strings.Join([]string{"digest", ch.Name, start.Format("2006-01-02T15:04Z")}, "/")
	n, err := s.st.QueueNotifications(ctx, []store.NewNotification{{Key: key, Channel: ch.Name, Event: EventDigest, Payload: payload}})
	if err == nil && n > 0 {
		s.Wake()
	}
	return err
}

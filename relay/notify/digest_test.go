package notify

import (
	"testing"
	"time"

	"github.com/bccguard/bccguard/config"
)

// TestPeriodStart: hourly digests start on the hour; daily ones at
// digest_at (UTC), the previous day's before that time.
func TestPeriodStart(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	hourly := config.NotifyChannel{Digest: "hourly"}
	daily := config.NotifyChannel{Digest: "daily", DigestAt: "08:30"}
	for _, tc := range []struct {
		ch        config.NotifyChannel
		now, want string
	}{
		{hourly, "2026-03-02T09:59:59Z", "2026-03-02T09:00:00Z"},
		{hourly, "2026-03-02T10:00:00+01:00", "2026-03-02T09:00:00Z"},
		{daily, "2026-03-02T08:30:00Z", "2026-03-02T08:30:00Z"},
		{daily, "2026-03-02T23:00:00Z", "2026-03-02T08:30:00Z"},
		{daily, "2026-03-02T08:29:00Z", "2026-03-01T08:30:00Z"},
		{daily, "2026-03-01T00:10:00Z", "2026-02-28T08:30:00Z"},
	} {
		if got := periodStart(tc.ch, at(tc.now)); !got.Equal(at(tc.want)) {
			t.Errorf("%s digest at %s: period from %s, want %s", tc.ch.Digest, tc.now, got.Format(time.RFC3339), tc.want)
		}
	}
}

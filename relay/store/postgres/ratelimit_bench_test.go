package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// BenchmarkTakeRate is the cost of the rate limit check of one MAIL FROM
// with ten limits (ten scopes, one call), from 20 sessions at once: one
// round trip on PostgreSQL, a map lookup under a mutex on the embedded
// store. The 20 sessions are ten clients, two sessions each, so scopes are
// shared as a CRM's sessions share them:
//
//	go test -run '^$' -bench TakeRate -benchtime 5000x ./relay/store/postgres/
func BenchmarkTakeRate(b *testing.B) {
	benchBackends(b, func(b *testing.B, s store.Store) {
		rc := s.(store.RateCounter)
		windows := []time.Duration{time.Minute, time.Hour, 24 * time.Hour}
		reqs := func(client int) []store.RateRequest {
			out := make([]store.RateRequest, 10)
			for i := range out {
				out[i] = store.RateRequest{Scope: fmt.Sprintf("limit:l%d/u:crm%d", i, client), Window: windows[i%3],
					Messages: 1, MaxMessages: 1 << 40}
			}
			return out
		}
		b.ResetTimer()
		start := time.Now()
		parallel(b, b.N, func(w int) error {
			res, err := rc.TakeRate(bg, time.Now(), reqs(w%10))
			if err == nil && !res.Taken {
				err = fmt.Errorf("refused: %+v", res)
			}
			return err
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "checks/s")
	})
}

package limit

import (
	"fmt"
	"testing"
	"time"

	"github.com/bccguard/bccguard/config"
)

// BenchmarkTransaction is what the limits add to one message with one
// recipient (MAIL FROM, RCPT TO, acceptance) on the embedded store's
// in-memory counts, with none and with ten limits that all apply, as
// tests/bench's TestBenchRateLimits configures them:
//
//	go test -run '^$' -bench Transaction -benchmem ./relay/limit/
func BenchmarkTransaction(b *testing.B) {
	per := []config.RateWindow{config.RateWindow(time.Minute), config.RateWindow(time.Hour), config.RateWindow(24 * time.Hour)}
	keys := []string{config.RateKeyClientIP, config.RateKeySenderDomain, config.RateKeyListener, config.RateKeyUser}
	var ten []config.RateLimit
	for i := range 10 {
		ten = append(ten, config.RateLimit{Name: fmt.Sprintf("l%d", i), Key: keys[i%len(keys)], Per: per[i%len(per)],
			Messages: 1 << 40, Recipients: 1 << 40})
	}
	for _, c := range []struct {
		name   string
		limits []config.RateLimit
	}{{"none", nil}, {"ten", ten}} {
		b.Run(c.name, func(b *testing.B) {
			l, clk, _, _ := newLimiter(b, c.limits...)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					tx, err := l.Mail(bg, crmA, "news@brand.example")
					if err != nil {
						b.Error(err)
						return
					}
					if err := tx.Rcpt(bg); err != nil {
						b.Error(err)
						return
					}
					tx.Accepted()
					tx.End()
				}
			})
			_ = clk
		})
	}
}

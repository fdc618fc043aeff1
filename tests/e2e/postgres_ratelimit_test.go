package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bccguard/bccguard/relay/store/postgres/pgtest"
	"github.com/bccguard/bccguard/tests/harness"
)

// TestPostgresRateLimitShared: two replicas on one PostgreSQL database
// share the counts: a limit of N messages per minute admits N in total,
// however the clients spread over the replicas and however many send at
// once. While the database cannot be reached, MAIL FROM is deferred (451)
// rather than let through unlimited; once it is back, mail flows again.
func TestPostgresRateLimitShared(t *testing.T) {
	t.Parallel()
	const limit, senders = 10, 24
	dsn := pgtest.Database(t, "bccguard_e2e_rl")
	sink := harness.NewSink(t)
	config := fmt.Sprintf(`
store: {backend: postgres, dsn: %q}
rate_limits:
  - {name: shared, key: sender_domain, per: minute, messages: %d}
`, dsn, limit)
	a := harness.Start(t, config, harness.WithUpstream(sink.Addr()))
	b := harness.Start(t, config, harness.WithUpstream(sink.Addr()))

	var (
		wg                 sync.WaitGroup
		mu                 sync.Mutex
		accepted, deferred int
		unexpected         []string
		start              = make(chan struct{})
	)
	for i := range senders {
		r := a
		if i%2 == 1 {
			r = b
		}
		wg.Go(func() {
			msg := harness.CRLF(fmt.Sprintf("From: news@brand.example\nTo: ann@example.net\nSubject: %d\nMessage-ID: <shared-%d@brand.example>\n\nHi.\n", i, i))
			<-start
			_, err := harness.TrySend(r.Addr(), "news@brand.example", []string{"ann@example.net"}, bytesReader(string(msg)), nil)
			mu.Lock()
			defer mu.Unlock()
			switch code, enh := harness.Code(err); {
			case err == nil:
				accepted++
			case code == 451 && enh == "4.7.0" && strings.Contains(err.Error(), "MAIL FROM"):
				deferred++
			default:
				unexpected = append(unexpected, err.Error())
			}
		})
	}
	close(start)
	wg.Wait()
	if len(unexpected) > 0 || accepted != limit || deferred != senders-limit {
		t.Fatalf("%d senders over 2 replicas under a limit of %d per minute: %d accepted, %d deferred with 451 4.7.0, other: %v",
			senders, limit, accepted, deferred, unexpected)
	}
	sink.WaitFor(t, limit, deliverTimeout)
	if n := sink.Count(); n != limit {
		t.Fatalf("the upstream got %d messages, want %d", n, limit)
	}

	// The database goes away: no MAIL FROM gets through unchecked.
	setConnections(t, dsn, false)
	for _, r := range []*harness.Relay{a, b} {
		_, err := harness.TrySend(r.Addr(), "news@other.example", []string{"ann@example.net"}, bytesReader("Subject: x\r\n\r\nx\r\n"), nil)
		if code, enh := harness.Code(err); code != 451 || enh != "4.3.0" || !strings.Contains(err.Error(), "MAIL FROM") {
			t.Fatalf("MAIL FROM while the database is unreachable: %v, want 451 4.3.0", err)
		}
	}
	setConnections(t, dsn, true)
	harness.Eventually(t, queueTimeout, "mail accepted again once the database is back", func() bool {
		_, err := harness.TrySend(a.Addr(), "news@other.example", []string{"ann@example.net"}, bytesReader("Subject: x\r\n\r\nx\r\n"), nil)
		return err == nil
	})
}

// setConnections allows or refuses connections to dsn's database, and
// ends those open when refusing: an outage as the relay sees it.
func setConnections(t *testing.T, dsn string, allow bool) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.Server())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s ALLOW_CONNECTIONS %t", pgx.Identifier{name}.Sanitize(), allow)); err != nil {
		t.Fatal(err)
	}
	if !allow {
		if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name); err != nil {
			t.Fatal(err)
		}
	}
}

package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/storetest"
)

var bg = context.Background()

// openAt opens a store on dsn and closes it when the test ends.
func openAt(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	opts.DSN = dsn
	if opts.TempDir == "" {
		opts.TempDir = t.TempDir()
	}
	s, err := Open(bg, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPostgresConformance runs the shared suite. Its bodies straddle the
// inline limit (128 KiB), so both paths are tested: small bodies in the
// commit's one round trip, larger ones through a temporary file and COPY.
func TestPostgresConformance(t *testing.T) {
	requirePostgres(t) // one clear failure, not one per subtest
	dsns := map[store.Store]string{}
	storetest.Run(t, func(t *testing.T) store.Store {
		dsn := freshSchema(t)
		s := openAt(t, dsn, Options{})
		dsns[s] = dsn
		return s
	}, storetest.WithReopen(func(t *testing.T, s store.Store) store.Store {
		dsn := dsns[s]
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s2 := openAt(t, dsn, Options{})
		dsns[s2] = dsn
		return s2
	}))
}

// TestPostgresMigrateConcurrent: replicas starting together on an empty database
// apply each migration once; a later run has nothing to do.
func TestPostgresMigrateConcurrent(t *testing.T) {
	dsn := freshSchema(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(bg, Options{DSN: dsn, TempDir: t.TempDir()})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
	}
	res, err := Migrate(bg, Options{DSN: dsn})
	if err != nil || len(res.Applied) != 0 || res.Version != SchemaVersion() {
		t.Fatalf("Migrate after Open = %+v, %v; want nothing applied, version %d", res, err, SchemaVersion())
	}
	conn, err := pgx.Connect(bg, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(bg)
	var n, max int
	if err := conn.QueryRow(bg, `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != SchemaVersion() || max != SchemaVersion() {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d", n, max, SchemaVersion())
	}

	// A schema newer than this build is refused.
	if _, err := conn.Exec(bg, `INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(bg, Options{DSN: dsn}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open on a newer schema = %v, want a refusal", err)
	}
}

// TestPostgresReplicasShareLeases: two stores (replicas) on one database: a lease
// taken by one excludes the other until it ends; then the other takes the
// work over and the first one's Complete is refused. Closing a replica
// frees its leases at once.
func TestPostgresReplicasShareLeases(t *testing.T) {
	dsn := freshSchema(t)
	a, b := openAt(t, dsn, Options{}), openAt(t, dsn, Options{})
	commitN(t, a, 1, 3)
	t0 := time.Now()
	ca, err := a.Claim(bg, "a", t0, 10, time.Minute)
	if err != nil || len(ca) != 3 {
		t.Fatalf("a claims %d, %v; want 3", len(ca), err)
	}
	if cb, err := b.Claim(bg, "b", t0.Add(59*time.Second), 10, time.Minute); err != nil || len(cb) != 0 {
		t.Fatalf("b claims %d during a's lease, %v", len(cb), err)
	}
	at, ok, err := b.NextDue(bg)
	if err != nil || !ok || at.Before(ca[0].LeaseUntil.Add(-time.Millisecond)) {
		t.Fatalf("b's NextDue = %v %v %v, want the end of a's lease %v", at, ok, err, ca[0].LeaseUntil)
	}
	cb, err := b.Claim(bg, "b", t0.Add(61*time.Second), 1, time.Minute)
	if err != nil || len(cb) != 1 {
		t.Fatalf("b claims %d after a's lease ended, %v; want 1", len(cb), err)
	}
	if err := a.Complete(bg, "a", cb[0].Delivery.ID, store.Outcome{State: store.StateDelivered}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("a completes a delivery b took over: %v, want ErrLeaseLost", err)
	}
	if err := b.Complete(bg, "b", cb[0].Delivery.ID, store.Outcome{State: store.StateDelivered}); err != nil {
		t.Fatal(err)
	}
	// a's two other leases still hold at t0+30s, until a closes.
	if got, _ := b.Claim(bg, "b", t0.Add(30*time.Second), 10, time.Minute); len(got) != 0 {
		t.Fatalf("b claims %d of a's live leases", len(got))
	}
	a.Close()
	if got, err := b.Claim(bg, "b", t0.Add(30*time.Second), 10, time.Minute); err != nil || len(got) != 2 {
		t.Fatalf("after a closed, b claims %d, %v; want a's 2", len(got), err)
	}
}

// TestPostgresReplicasClaimConcurrently: workers of three replicas claiming and
// completing at once: every delivery exactly once.
func TestPostgresReplicasClaimConcurrently(t *testing.T) {
	dsn := freshSchema(t)
	stores := []*Store{openAt(t, dsn, Options{}), openAt(t, dsn, Options{}), openAt(t, dsn, Options{})}
	commitN(t, stores[0], 60, 4)
	var (
		mu   sync.Mutex
		done = map[string]int{}
		wg   sync.WaitGroup
	)
	for r, s := range stores {
		for w := range 4 {
			owner := fmt.Sprintf("r%d/w%d", r, w)
			wg.Go(func() {
				for {
					cs, err := s.Claim(bg, owner, time.Now(), 2, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if len(cs) == 0 {
						return
					}
					for _, c := range cs {
						if err := s.Complete(bg, owner, c.Delivery.ID, store.Outcome{State: store.StateDelivered}); err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						done[c.Delivery.ID]++
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	if len(done) != 240 {
		t.Fatalf("%d deliveries completed, want 240", len(done))
	}
	for id, n := range done {
		if n != 1 {
			t.Fatalf("delivery %s completed %d times", id, n)
		}
	}
	var left int
	conn, _ := stores[0].pool.Acquire(bg)
	defer conn.Release()
	if err := conn.QueryRow(bg, `SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM message_chunks) + (SELECT count(*) FROM deliveries)`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d rows left after every delivery was final (%v)", left, err)
	}
}

// TestPostgresSynchronousCommitForced: a session default of synchronous_commit=off
// (here from the DSN) is turned back on, so commits are durable on return.
func TestPostgresSynchronousCommitForced(t *testing.T) {
	dsn := freshSchema(t) + "&synchronous_commit=off"
	s := openAt(t, dsn, Options{})
	var v string
	if err := s.pool.QueryRow(bg, `SELECT current_setting('synchronous_commit')`).Scan(&v); err != nil || v != "on" {
		t.Fatalf("synchronous_commit = %q, %v; want on", v, err)
	}
}

// TestPostgresTextColumnsSanitized: NUL bytes and invalid UTF-8, which PostgreSQL
// refuses in text, do not make an outcome or an audit entry fail.
func TestPostgresTextColumnsSanitized(t *testing.T) {
	s := openAt(t, freshSchema(t), Options{})
	commitN(t, s, 1, 1)
	cs, err := s.Claim(bg, "w\x00", time.Now(), 1, time.Minute)
	if err != nil || len(cs) != 1 {
		t.Fatal(cs, err)
	}
	bad := "451 4.0.0 bad\x00reply \xff\xfe"
	if err := s.Complete(bg, "w\x00", cs[0].Delivery.ID, store.Outcome{State: store.StateDeferred, NextAttempt: time.Now(), Error: bad}); err != nil {
		t.Fatalf("Complete with %q: %v", bad, err)
	}
	ds, _ := s.List(bg, store.Filter{})
	if len(ds) != 1 || ds[0].LastError != "451 4.0.0 bad\uFFFDreply \uFFFD" {
		t.Fatalf("LastError = %q", ds[0].LastError)
	}
	if err := s.AddAudit(bg, store.AuditEntry{Actor: "x\x00", Action: "delete", Target: "\xff", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	if es, err := s.Audit(bg, store.AuditFilter{Actor: "x\x00"}); err != nil || len(es) != 1 {
		t.Fatalf("Audit by the same actor = %v, %v", es, err)
	}
}

// TestPostgresNoSpaceMapping: a disk-full error from PostgreSQL (SQLSTATE 53100) or
// from the local spool folder is store.ErrNoSpace; other errors are not.
func TestPostgresNoSpaceMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "53100", Message: `could not extend file "base/16384/16385": No space left on device`}, true},
		{fmt.Errorf("write: %w", syscall.ENOSPC), true},
		{&pgconn.PgError{Code: "23505"}, false},
		{errors.New("connection reset"), false},
	} {
		if got := errors.Is(pgErr("commit", tc.err), store.ErrNoSpace); got != tc.want {
			t.Errorf("pgErr(%v) is ErrNoSpace: %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestPostgresLargeBodyMemory: committing and reading back a 32 MiB message
// allocates a small, fixed amount, not the message: it is streamed through
// a temporary file, COPY and one chunk at a time.
func TestPostgresLargeBodyMemory(t *testing.T) {
	s := openAt(t, freshSchema(t), Options{})
	const size = 32 << 20
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sp, id, err := s.NewSpool(bg)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < size; n += len(chunk) {
		if _, err := sp.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sp.Commit(bg, store.Message{}, oneRcpt()); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Open(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil || n != size {
		t.Fatalf("read back %d bytes, %v", n, err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("commit and read of %d MiB allocated %.1f MiB", size>>20, float64(alloc)/(1<<20))
	if alloc > size/8 && !raceEnabled {
		t.Fatalf("commit and read of %d MiB allocated %d MiB: memory grows with the message", size>>20, alloc>>20)
	}
	want := sha256.New()
	for n := 0; n < size; n += len(chunk) {
		want.Write(chunk)
	}
	if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
		t.Fatal("body read back differs")
	}
}

func oneRcpt() []store.NewDelivery {
	return []store.NewDelivery{{Recipients: []store.Recipient{{Addr: "a@example.net"}}, Rewrite: store.RewritePass}}
}

// commitN commits n small messages with per deliveries each.
func commitN(t testing.TB, s *Store, n, per int) {
	t.Helper()
	ds := make([]store.NewDelivery, per)
	for i := range ds {
		ds[i] = store.NewDelivery{Recipients: []store.Recipient{{Addr: fmt.Sprintf("r%d@example.net", i)}}, Rewrite: store.RewriteExplode}
	}
	for range n {
		sp, _, err := s.NewSpool(bg)
		if err != nil {
			t.Fatal(err)
		}
		sp.Write([]byte("Subject: x\r\n\r\nbody\r\n"))
		if _, err := sp.Commit(bg, store.Message{}, ds); err != nil {
			t.Fatal(err)
		}
	}
}

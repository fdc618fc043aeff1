package postgres

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/embedded"
)

// The benchmarks run each workload on PostgreSQL and on the embedded store
// in the same run, so the figures compare on one machine:
//
//	go test -run '^$' -bench AcceptDeliver -benchtime 3000x ./relay/store/postgres/
//	go test -run '^$' -bench LargeMessage -benchtime 20x ./relay/store/postgres/
//
// The embedded store writes in b.TempDir (set TMPDIR to a real disk, not
// tmpfs); PostgreSQL is the test server (pgtest). Both keep every fsync.

// benchSessions is how many sessions (and then delivery workers) run at
// once.
const benchSessions = 20

func benchBackends(b *testing.B, run func(b *testing.B, s store.Store)) {
	b.Run("embedded", func(b *testing.B) {
		s, err := embedded.Open(b.TempDir(), embedded.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		run(b, s)
	})
	b.Run("postgres", func(b *testing.B) {
		requirePostgres(b)
		s := openAt(b, freshSchema(b), Options{})
		run(b, s)
	})
}

// parallel runs n jobs on benchSessions goroutines; job gets the worker
// number.
func parallel(b *testing.B, n int, job func(worker int) error) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for w := range benchSessions {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := job(w); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkAcceptDeliver: 20 sessions commit b.N messages of 2 KiB with one
// recipient each; then 20 workers claim and complete them (each Complete
// collects its message). Reports both phases and the whole in messages
// per second.
func BenchmarkAcceptDeliver(b *testing.B) {
	benchBackends(b, func(b *testing.B, s store.Store) {
		data := make([]byte, 2<<10)
		for i := range data {
			data[i] = 'a' + byte(i%26)
		}
		ds := oneRcpt()
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		parallel(b, b.N, func(int) error {
			sp, _, err := s.NewSpool(bg)
			if err != nil {
				return err
			}
			if _, err := sp.Write(data); err != nil {
				return err
			}
			_, err = sp.Commit(bg, store.Message{}, ds)
			return err
		})
		accepted := time.Since(start)
		var delivered atomic.Int64
		parallel(b, b.N, func(w int) error {
			owner := fmt.Sprint("w", w)
			cs, err := s.Claim(bg, owner, time.Now(), 1, time.Minute)
			if err != nil || len(cs) == 0 {
				return err // none left: another worker took the last ones
			}
			delivered.Add(1)
			return s.Complete(bg, owner, cs[0].Delivery.ID, store.Outcome{State: store.StateDelivered})
		})
		// Workers that found nothing while others still held the last
		// leases leave some behind: finish them.
		for delivered.Load() < int64(b.N) {
			cs, err := s.Claim(bg, "w", time.Now(), 100, time.Minute)
			if err != nil || len(cs) == 0 {
				b.Fatalf("%d of %d delivered; claim: %v", delivered.Load(), b.N, err)
			}
			for _, c := range cs {
				if err := s.Complete(bg, "w", c.Delivery.ID, store.Outcome{State: store.StateDelivered}); err != nil {
					b.Fatal(err)
				}
				delivered.Add(1)
			}
		}
		total := time.Since(start)
		b.StopTimer()
		n := float64(b.N)
		b.ReportMetric(n/accepted.Seconds(), "accepted-msgs/s")
		b.ReportMetric(n/(total-accepted).Seconds(), "delivered-msgs/s")
		b.ReportMetric(n/total.Seconds(), "msgs/s")
		if st, err := s.Stats(bg); err != nil || st.Pending != 0 {
			b.Fatalf("after the run: %+v, %v", st, err)
		}
	})
}

// BenchmarkLargeMessage: one 10 MiB message at a time, written in 64 KiB
// pieces as a session would, committed, claimed, read back whole and
// completed (which deletes it). MB/s and allocations per message show that
// memory does not grow with the message.
func BenchmarkLargeMessage(b *testing.B) {
	benchBackends(b, func(b *testing.B, s store.Store) {
		piece := make([]byte, 64<<10)
		for i := range piece {
			piece[i] = byte(i * 31)
		}
		const size = 10 << 20
		ds := oneRcpt()
		b.SetBytes(size)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			sp, id, err := s.NewSpool(bg)
			if err != nil {
				b.Fatal(err)
			}
			for n := 0; n < size; n += len(piece) {
				if _, err := sp.Write(piece); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := sp.Commit(bg, store.Message{}, ds); err != nil {
				b.Fatal(err)
			}
			cs, err := s.Claim(bg, "w", time.Now(), 1, time.Minute)
			if err != nil || len(cs) != 1 {
				b.Fatalf("claim: %v %v", cs, err)
			}
			rc, err := s.Open(bg, id)
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, rc); err != nil || n != size {
				b.Fatalf("read %d bytes: %v", n, err)
			}
			rc.Close()
			if err := s.Complete(bg, "w", cs[0].Delivery.ID, store.Outcome{State: store.StateDelivered}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package embedded

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// The benchmarks run on b.TempDir (set TMPDIR to a real disk, not tmpfs)
// with every fsync in place. "commits/msg" is bbolt transactions per
// message; each costs two fdatasyncs (pages, then meta), reported as
// "fsyncs/msg".

// sessions is how many concurrent sessions the parallel benchmarks run.
const sessions = 20

func setSessions(b *testing.B) {
	b.SetParallelism(max(1, (sessions+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0)))
}

func reportCommits(b *testing.B, s *Store, start uint64, unit string) {
	n := float64(b.N)
	commits := float64(s.batch.commits.Load() - start)
	b.ReportMetric(n/b.Elapsed().Seconds(), unit+"/s")
	b.ReportMetric(commits/n, "commits/"+unit)
	b.ReportMetric(2*commits/n, "fsyncs/"+unit)
}

// spoolOne stores one message as a session does.
func spoolOne(s *Store, msg store.Message, data []byte, ds []store.NewDelivery) error {
	sp, _, err := s.NewSpool(bg)
	if err != nil {
		return err
	}
	defer sp.Abort()
	if _, err := sp.Write(data); err != nil {
		return err
	}
	_, err = sp.Commit(bg, msg, ds)
	return err
}

// BenchmarkCommitParallel: 2 KiB messages with one recipient from about 20
// concurrent sessions; shows the group commit.
func BenchmarkCommitParallel(b *testing.B) {
	s := openAt(b, b.TempDir(), Options{})
	data := make([]byte, 2<<10)
	ds := oneRcpt()
	setSessions(b)
	b.ReportAllocs()
	start := s.batch.commits.Load()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := spoolOne(s, store.Message{}, data, ds); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportCommits(b, s, start, "msgs")
}

// BenchmarkCommitLarge: one 10 MiB message at a time, streamed in 64 KiB
// writes to its spool file. Each is delivered (and its file removed)
// outside the timer, so the disk does not fill.
func BenchmarkCommitLarge(b *testing.B) {
	s := openAt(b, b.TempDir(), Options{})
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	const size = 10 << 20
	ds := oneRcpt()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		sp, _, err := s.NewSpool(bg)
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < size; n += len(chunk) {
			if _, err := sp.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := sp.Commit(bg, store.Message{}, ds); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cs, err := s.Claim(bg, "bench", time.Now().Add(time.Second), 1, time.Minute)
		if err != nil || len(cs) != 1 {
			b.Fatalf("claim: %v %v", cs, err)
		}
		if err := s.Complete(bg, "bench", cs[0].Delivery.ID, store.Outcome{State: store.StateDelivered}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkClaimComplete: about 20 workers each claim one delivery and
// complete it as delivered (collecting its message); the completions
// share commits.
func BenchmarkClaimComplete(b *testing.B) {
	s := openAt(b, b.TempDir(), Options{})
	// b.N deliveries, 10 per message, committed before the timer.
	ds := make([]store.NewDelivery, 10)
	for i := range ds {
		ds[i] = store.NewDelivery{Recipients: []store.Recipient{{Addr: fmt.Sprint("r", i, "@example.net")}}, Rewrite: store.RewriteExplode}
	}
	for left := b.N; left > 0; left -= len(ds) {
		commitBytes(b, s, make([]byte, 2<<10), ds[:min(left, len(ds))])
	}
	setSessions(b)
	b.ReportAllocs()
	var worker atomic.Int64
	at := time.Now().Add(time.Second)
	start := s.batch.commits.Load()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		owner := fmt.Sprint("w", worker.Add(1))
		for pb.Next() {
			cs, err := s.Claim(bg, owner, at, 1, time.Minute)
			if err != nil || len(cs) != 1 {
				b.Errorf("claim: %d, %v", len(cs), err)
				return
			}
			if err := s.Complete(bg, owner, cs[0].Delivery.ID, store.Outcome{State: store.StateDelivered}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportCommits(b, s, start, "deliveries")
}

// BenchmarkExplodeBacklog: 20 sessions commit messages of 500 exploded
// deliveries each (the make bench explode scenario's store side), then the
// whole backlog is claimed and delivered. "dbKiB/msg" is the size of
// queue.db at the peak of the backlog per message: the file bccguard maps,
// and so part of its resident memory.
func BenchmarkExplodeBacklog(b *testing.B) {
	dir := b.TempDir()
	s := openAt(b, dir, Options{})
	ds := make([]store.NewDelivery, 500)
	for i := range ds {
		ds[i] = store.NewDelivery{Recipients: []store.Recipient{{Addr: fmt.Sprintf("customer%04d@shop%d.example", i, i%7)}}, Rewrite: store.RewriteExplode}
	}
	msg := store.Message{Envelope: store.Envelope{Sender: "crm@brand.example"}}
	for _, d := range ds {
		msg.Envelope.Recipients = append(msg.Envelope.Recipients, d.Recipients...)
	}
	data := make([]byte, 32<<10) // a header naming 500 recipients, and a short body
	b.ReportAllocs()
	var committed atomic.Int64
	setSessions(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := spoolOne(s, msg, data, ds); err != nil {
				b.Error(err)
				return
			}
			committed.Add(1)
		}
	})
	fi, err := os.Stat(filepath.Join(dir, "queue.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size())/1024/float64(committed.Load()), "dbKiB/msg")
	// Drained as the relay does: 8 workers, 8 deliveries per claim.
	at := time.Now().Add(time.Second)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			owner := fmt.Sprint("w", w)
			for {
				cs, err := s.Claim(bg, owner, at, 8, time.Minute)
				if err != nil || len(cs) == 0 {
					if err != nil {
						b.Error(err)
					}
					return
				}
				for _, c := range cs {
					if err := s.Complete(bg, owner, c.Delivery.ID, store.Outcome{State: store.StateDelivered}); err != nil {
						b.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(committed.Load()*int64(len(ds)))/time.Since(start).Seconds(), "delivered/s")
}

package postgres

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// TestPostgresReplicasShareNotifications: three replicas on one database
// claim the outbox at once: every notification is sent by exactly one of
// them; a queue of one key from each replica (a digest all of them try to
// send) keeps one; a replica that closes frees its leases at once.
func TestPostgresReplicasShareNotifications(t *testing.T) {
	dsn := freshSchema(t)
	stores := []*Store{openAt(t, dsn, Options{}), openAt(t, dsn, Options{}), openAt(t, dsn, Options{})}
	note := func(key string) store.NewNotification {
		return store.NewNotification{Key: key, Channel: "hook", Event: "held", Payload: []byte(`{}`)}
	}
	var batch []store.NewNotification
	for i := range 90 {
		batch = append(batch, note(fmt.Sprintf("n%d", i)))
	}
	if n, err := stores[1].QueueNotifications(bg, batch); err != nil || n != 90 {
		t.Fatalf("queued %d, %v", n, err)
	}
	var wg sync.WaitGroup
	queued := make([]int, len(stores))
	for i, s := range stores {
		wg.Go(func() {
			n, err := s.QueueNotifications(bg, []store.NewNotification{note("digest/hook/2026-03-02T08")})
			if err != nil {
				t.Error(err)
			}
			queued[i] = n
		})
	}
	wg.Wait()
	if queued[0]+queued[1]+queued[2] != 1 {
		t.Fatalf("the digest key was queued %v times by the replicas, want once in all", queued)
	}

	var (
		mu   sync.Mutex
		sent = map[string]int{}
	)
	for r, s := range stores {
		for w := range 3 {
			owner := fmt.Sprintf("r%d/w%d", r, w)
			wg.Go(func() {
				for {
					cs, err := s.ClaimNotifications(bg, owner, time.Now(), 2, time.Minute)
					if err != nil || len(cs) == 0 {
						if err != nil {
							t.Error(err)
						}
						return
					}
					for _, c := range cs {
						if err := s.CompleteNotification(bg, owner, c.ID, store.NotificationOutcome{State: store.NotificationSent}); err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						sent[c.Key]++
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	if len(sent) != 91 {
		t.Fatalf("%d notifications sent, want 91", len(sent))
	}
	for k, n := range sent {
		if n != 1 {
			t.Errorf("%s sent %d times", k, n)
		}
	}

	a, b := stores[0], stores[1]
	if _, err := a.QueueNotifications(bg, []store.NewNotification{note("late")}); err != nil {
		t.Fatal(err)
	}
	ca, err := a.ClaimNotifications(bg, "a", time.Now(), 10, time.Hour)
	if err != nil || len(ca) != 1 {
		t.Fatalf("a claims %v %v", ca, err)
	}
	if cb, _ := b.ClaimNotifications(bg, "b", time.Now(), 10, time.Hour); len(cb) != 0 {
		t.Fatal("b claimed under a's lease")
	}
	a.Close()
	cb, err := b.ClaimNotifications(bg, "b", time.Now(), 10, time.Hour)
	if err != nil || len(cb) != 1 {
		t.Fatalf("after a closed, b claims %v %v; want a's one", cb, err)
	}
	if err := a.CompleteNotification(bg, "a", ca[0].ID, store.NotificationOutcome{State: store.NotificationSent}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("a closed store completed: %v", err)
	}
}

package embedded

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bccguard/bccguard/relay/store"
)

// The crash test runs this test binary as a child (TestCrashChild) that
// commits, claims and completes from many goroutines, kills it with SIGKILL
// at a random moment, and checks the folder it left: every message whose
// Commit returned is intact, nothing half-stored is visible, no orphan body
// file is left, and the work in flight is claimable again.

const crashEnv = "BCCGUARD_CRASH_DIR"

// crashBody is a message that says how to check itself: its header gives
// the size and SHA-256 of the rest, a slice of a random pool picked by seed
// (hashing is cheap even under the race detector; generating is not).
func crashBody(seed uint64, size int) []byte {
	pool := crashPool()
	off := int(seed % uint64(len(pool)-size))
	rest := pool[off : off+size]
	head := fmt.Sprintf("Size: %d\r\nSum: %x\r\n\r\n", size, sha256.Sum256(rest))
	return append([]byte(head), rest...)
}

var crashPool = sync.OnceValue(func() []byte {
	b := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{1}).Read(b)
	return b
})

func checkCrashBody(got []byte) error {
	var size int
	var sum []byte
	if _, err := fmt.Sscanf(string(got), "Size: %d\r\nSum: %x\r\n", &size, &sum); err != nil {
		return fmt.Errorf("no check header: %v", err)
	}
	_, rest, ok := bytes.Cut(got, []byte("\r\n\r\n"))
	if h := sha256.Sum256(rest); !ok || len(rest) != size || !bytes.Equal(h[:], sum) {
		return fmt.Errorf("body differs: %d bytes, header says %d", len(rest), size)
	}
	return nil
}

// TestCrashChild is the child side of TestCrash; it does nothing unless
// run by it. It prints "ACK id" once a Commit returned, "OPEN id" for
// spools it will never commit and "DONE id" before completing the last
// delivery of a message, then works until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("helper process of TestCrash")
	}
	s, err := Open(dir, Options{LockTimeout: 10 * time.Second})
	if err != nil {
		fmt.Println("FAIL", err)
		os.Exit(3)
	}
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		fmt.Printf(format+"\n", args...)
		outMu.Unlock()
	}
	ctx := context.Background()
	var seed struct {
		sync.Mutex
		n uint64
	}
	nextSeed := func() uint64 {
		seed.Lock()
		defer seed.Unlock()
		seed.n++
		return uint64(time.Now().UnixNano()) ^ seed.n<<48
	}
	for g := range 12 {
		go func() {
			r := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			for {
				size := 100 + r.IntN(4000)
				switch r.IntN(10) {
				case 0:
					size = 200<<10 + r.IntN(2<<20) // spilled
				case 1:
					size = 0
				}
				data := crashBody(nextSeed(), size)
				sp, id, err := s.NewSpool(ctx)
				if err != nil {
					say("FAIL %v", err)
					return
				}
				commit := r.IntN(8) != 0
				if !commit {
					say("OPEN %s", id)
				}
				for rest := data; len(rest) > 0; {
					n := min(len(rest), 1+r.IntN(64<<10))
					if _, err := sp.Write(rest[:n]); err != nil {
						say("FAIL %v", err)
						return
					}
					rest = rest[n:]
				}
				if !commit {
					continue // neither committed nor aborted
				}
				msg := store.Message{Envelope: store.Envelope{Sender: "s@example.com"}, HeaderLen: int64(bytes.Index(data, []byte("\r\n\r\n")) + 4)}
				if _, err := sp.Commit(ctx, msg, crashRcpts(r.IntN(3))); err != nil {
					say("FAIL %v", err)
					return
				}
				say("ACK %s", id)
			}
		}()
	}
	for w := range 4 {
		go func() {
			owner := fmt.Sprint("child", w)
			r := rand.New(rand.NewPCG(uint64(w), 99))
			for {
				cs, err := s.Claim(ctx, owner, time.Now(), 5, time.Hour)
				if err != nil {
					say("FAIL %v", err)
					return
				}
				for _, c := range cs {
					out := store.Outcome{State: store.StateDelivered}
					if r.IntN(3) == 0 {
						out = store.Outcome{State: store.StateDeferred, NextAttempt: time.Now().Add(time.Duration(r.IntN(50)) * time.Millisecond)}
					}
					// Any final outcome may be the message's last.
					if out.State.Final() {
						say("DONE %s", c.Message.ID)
					}
					if err := s.Complete(ctx, owner, c.Delivery.ID, out); err != nil {
						say("FAIL %v", err)
						return
					}
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	select {}
}

func crashRcpts(n int) []store.NewDelivery {
	ds := make([]store.NewDelivery, n)
	for i := range ds {
		ds[i] = store.NewDelivery{Recipients: []store.Recipient{{Addr: fmt.Sprintf("r%d@example.net", i)}}, Rewrite: store.RewritePass}
	}
	return ds
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs child processes")
	}
	good := crashBody(42, 1000)
	bad := bytes.Clone(good)
	bad[len(bad)-1]++
	if checkCrashBody(good) != nil || checkCrashBody(bad) == nil || checkCrashBody(good[:len(good)-1]) == nil {
		t.Fatal("checkCrashBody does not tell good bodies from bad")
	}
	dir := t.TempDir()
	acked, open, done := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Kill after a random number of acknowledged commits.
		killAfter := 50 + rand.IntN(400)
		n := 0
		timeout := time.After(60 * time.Second)
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break read
				}
				kind, id, _ := strings.Cut(line, " ")
				switch kind {
				case "ACK":
					acked[id] = true
					if n++; n == killAfter {
						cmd.Process.Kill() // SIGKILL
					}
				case "OPEN":
					open[id] = true
				case "DONE":
					done[id] = true
				case "FAIL":
					cmd.Process.Kill()
					t.Fatalf("child: %s", line)
				}
			case <-timeout:
				cmd.Process.Kill()
				t.Fatal("child made no progress")
			}
		}
		cmd.Wait()
		checkCrashDir(t, dir, acked, open, done)
		t.Logf("round %d: killed after %d commits; %d acknowledged so far", round, n, len(acked))
	}
}

// checkCrashDir opens the folder a killed child left and checks it.
func checkCrashDir(t *testing.T, dir string, acked, open, done map[string]bool) {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	for id := range acked {
		if _, err := s.Message(ctx, id); err != nil {
			if done[id] && isNotFound(err) {
				continue // delivered and collected
			}
			t.Fatalf("acknowledged message %s lost: %v", id, err)
		}
	}
	for id := range open {
		if _, err := s.Message(ctx, id); !isNotFound(err) {
			t.Fatalf("never-committed message %s: %v, want ErrNotFound", id, err)
		}
	}
	// Every stored message is whole, and every body file has a record.
	files, err := os.ReadDir(s.spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	var stored []*msgRecord
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMessages).ForEach(func(k, _ []byte) error {
			m, err := getMsg(tx, string(k))
			stored = append(stored, m)
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	spilled := 0
	for _, m := range stored {
		if m.Spilled {
			spilled++
		}
		rc, err := s.Open(ctx, m.Msg.ID)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != m.Msg.Size {
			t.Fatalf("message %s: %d bytes, record says %d", m.Msg.ID, len(b), m.Msg.Size)
		}
		if err := checkCrashBody(b); err != nil {
			t.Fatalf("message %s: %v", m.Msg.ID, err)
		}
	}
	if len(files) != spilled {
		t.Fatalf("%d files in spool/, %d spilled messages", len(files), spilled)
	}
	// Counters agree with the records, and everything pending (leased by
	// the dead child or not) is claimable once due.
	all, err := s.List(ctx, store.Filter{States: []store.State{store.StateQueued, store.StateDeferred}, Limit: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stats(ctx)
	deferred := 0
	for _, d := range all {
		if d.State == store.StateDeferred {
			deferred++
		}
	}
	if st.Pending != len(all) || st.Deferred != deferred {
		t.Fatalf("Stats = %+v; records: %d pending, %d deferred", st, len(all), deferred)
	}
	cs, err := s.Claim(ctx, "checker", time.Now().Add(time.Minute), 1<<30, time.Millisecond)
	if err != nil || len(cs) != len(all) {
		t.Fatalf("after restart, Claim = %d deliveries, %v; want all %d pending", len(cs), err, len(all))
	}
	if err := s.db.View(func(tx *bolt.Tx) error { return errorsOf(tx.Check()) }); err != nil {
		t.Fatalf("bbolt consistency check: %v", err)
	}
}

func errorsOf(ch <-chan error) error {
	var first error
	for err := range ch {
		if first == nil {
			first = err
		}
	}
	return first
}

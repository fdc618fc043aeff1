package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssSampler follows a process's RssAnon and RssFile while a scenario
// runs. The kernel keeps a peak only of their sum (VmHWM, which the table
// reports); the split shows how much of it is the process's own memory
// (anon: Go heap, stacks) and how much is mapped files (the binary's code
// and the embedded store's queue.db), which are shared with the page cache
// and reclaimable.
type rssSampler struct {
	pid  int
	stop chan struct{}
	done sync.WaitGroup

	mu         sync.Mutex
	anon, file int64 // peaks, bytes
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{})}
	s.done.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	})
	return s
}

func (s *rssSampler) sample() {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid))
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range strings.Split(string(b), "\n") {
		for name, peak := range map[string]*int64{"RssAnon:": &s.anon, "RssFile:": &s.file} {
			if v, ok := strings.CutPrefix(line, name); ok {
				if f := strings.Fields(v); len(f) == 2 && f[1] == "kB" {
					if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
						*peak = max(*peak, n<<10)
					}
				}
			}
		}
	}
}

// Stop ends sampling and returns the peaks of anon and file RSS.
func (s *rssSampler) Stop() (anon, file int64) {
	close(s.stop)
	s.done.Wait()
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.anon, s.file
}

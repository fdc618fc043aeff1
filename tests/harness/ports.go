package harness

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Ports for relays and sinks come from below the kernel's ephemeral range
// and are never handed out twice by one test binary. With ports from
// "listen on :0", a sink stopped to play "upstream down" would free its port
// for the next relay or sink of a parallel test, which would then receive
// the mail meant for the dead upstream; and outgoing connections, whose
// source ports come from the ephemeral range, could hold a listener's port.
var ports struct {
	mu     sync.Mutex
	lo, hi int
	next   int
}

// FreePort returns a TCP port that nothing is bound to on 127.0.0.1 or
// 127.0.0.2, outside the ephemeral range, not returned before by this
// process. The caller (usually bccguard) binds it afterwards.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	return p
}

func freePort() (int, error) {
	ports.mu.Lock()
	defer ports.mu.Unlock()
	if ports.next == 0 {
		ports.lo, ports.hi = portRange()
		// Different test binaries (go test runs packages in parallel)
		// start at different places.
		seed := os.Getpid()*7919 + int(time.Now().UnixNano()%100003)
		ports.next = ports.lo + seed%(ports.hi-ports.lo)
	}
	for range ports.hi - ports.lo {
		p := ports.next
		ports.next++
		if ports.next >= ports.hi {
			ports.next = ports.lo
		}
		if bindable(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port in %d-%d", ports.lo, ports.hi-1)
}

// portRange is [10000, start of the ephemeral range).
func portRange() (lo, hi int) {
	lo, hi = 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > lo+1000 {
				hi = n
			}
		}
	}
	return lo, hi
}

func bindable(p int) bool {
	for _, host := range []string{"127.0.0.1", "127.0.0.2"} {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// listenFree listens on 127.0.0.1 on a port from FreePort.
func listenFree(t testing.TB) net.Listener {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t))))
		if err == nil {
			return l
		}
	}
	t.Fatal("could not listen on a free port")
	return nil
}

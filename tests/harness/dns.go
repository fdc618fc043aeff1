package harness

import (
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS is a tiny authoritative DNS server on 127.0.0.1 (UDP) that answers TXT
// queries from a table the test fills, and NXDOMAIN for every other name:
// enough for bccguard's DKIM key lookups (dkim.resolver) and `bccguard dkim
// check --resolver`, without public DNS. Answers larger than a UDP reply
// holds are not supported (an RSA key up to 4096 bits fits with EDNS).
type DNS struct {
	conn *net.UDPConn

	mu  sync.Mutex
	txt map[string][]string // lowercased name without the final dot
	n   int                 // queries answered
}

// NewDNS starts a server; it stops when the test ends.
func NewDNS(t testing.TB) *DNS {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	d := &DNS{conn: c, txt: map[string][]string{}}
	done := make(chan struct{})
	go func() { defer close(done); d.serve() }()
	t.Cleanup(func() { c.Close(); <-done })
	return d
}

// Addr is the server's host:port, for dkim.resolver or --resolver.
func (d *DNS) Addr() string { return d.conn.LocalAddr().String() }

// SetTXT publishes one TXT record at name, replacing any there. A value
// longer than 255 bytes is split into several strings, as a zone file
// must; resolvers join them again.
func (d *DNS) SetTXT(name, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txt[key(name)] = []string{value}
}

// Delete removes the records at name.
func (d *DNS) Delete(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.txt, key(name))
}

// Queries is how many queries the server has answered.
func (d *DNS) Queries() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

func key(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

func (d *DNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if out, ok := d.answer(buf[:n]); ok {
			_, _ = d.conn.WriteToUDP(out, from)
		}
	}
}

func (d *DNS) answer(req []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	d.mu.Lock()
	vals, found := d.txt[key(q.Name.String())]
	d.n++
	d.mu.Unlock()

	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !found {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(make([]byte, 0, 1232), rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	if found && q.Type == dnsmessage.TypeTXT {
		for _, v := range vals {
			var parts []string
			for len(v) > 255 {
				parts, v = append(parts, v[:255]), v[255:]
			}
			parts = append(parts, v)
			rr := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeTXT, Class: dnsmessage.ClassINET, TTL: 60}
			if b.TXTResource(rr, dnsmessage.TXTResource{TXT: parts}) != nil {
				return nil, false
			}
		}
	}
	out, err := b.Finish()
	return out, err == nil
}

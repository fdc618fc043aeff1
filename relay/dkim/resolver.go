package dkim

import (
	"context"
	"net"
	"strings"
)

// NewLookup returns a TXT lookup against the DNS server at addr (host:port),
// or through the system's resolver when addr is "". A dedicated server is
// what a relay on an internal network often needs (a validating resolver
// kept for mail), and what tests point at a responder on loopback.
//
// The errors are net.Resolver's own *net.DNSError, unwrapped: go-msgauth
// tells a temporary failure (temperror) from a missing key (permerror) by
// asserting net.Error on them.
func NewLookup(addr string) LookupTXT {
	r := net.DefaultResolver
	if addr != "" {
		r = &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
		}
	}
	return func(ctx context.Context, name string) ([]string, error) {
		// A fully qualified name: no search domains are tried.
		if !strings.HasSuffix(name, ".") {
			name += "."
		}
		return r.LookupTXT(ctx, name)
	}
}

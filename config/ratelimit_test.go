package config

import (
	"strings"
	"testing"
	"time"
)

func TestRateLimits(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`
rate_limits:
  - {name: crm-burst, key: user, per: minute, messages: 30}
  - {name: crm-daily, key: user, per: day, recipients: 10000, action: quarantine}
  - {name: per-net, key: client_ip, per: 10m, messages: 500, ipv4_prefix: 24}
  - {name: domains, key: sender_domain, per: 2s, messages: 3, recipients: 9}
  - {name: listener, key: listener, per: hour, messages: 100000}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []RateLimit{
		{Name: "crm-burst", Key: RateKeyUser, Per: RateWindow(time.Minute), Messages: 30, Action: RateActionDefer, IPv4Prefix: 32, IPv6Prefix: 64},
		{Name: "crm-daily", Key: RateKeyUser, Per: RateWindow(24 * time.Hour), Recipients: 10000, Action: RateActionQuarantine, IPv4Prefix: 32, IPv6Prefix: 64},
		{Name: "per-net", Key: RateKeyClientIP, Per: RateWindow(10 * time.Minute), Messages: 500, Action: RateActionDefer, IPv4Prefix: 24, IPv6Prefix: 64},
		{Name: "domains", Key: RateKeySenderDomain, Per: RateWindow(2 * time.Second), Messages: 3, Recipients: 9, Action: RateActionDefer, IPv4Prefix: 32, IPv6Prefix: 64},
		{Name: "listener", Key: RateKeyListener, Per: RateWindow(time.Hour), Messages: 100000, Action: RateActionDefer, IPv4Prefix: 32, IPv6Prefix: 64},
	}
	if len(c.RateLimits) != len(want) {
		t.Fatalf("got %d limits", len(c.RateLimits))
	}
	for i := range want {
		if c.RateLimits[i] != want[i] {
			t.Errorf("limit %d = %+v, want %+v", i, c.RateLimits[i], want[i])
		}
	}
}

func TestRateLimitErrorsHaveLines(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"rate_limits:\n  - {name: a, key: user, per: minute}\n", "t.yaml:2: rate limit a: needs messages or recipients"},
		{"rate_limits:\n  - name: a\n    key: ip\n    per: minute\n    messages: 1\n", "t.yaml:3: rate limit a: key must be user, sender_domain, client_ip or listener"},
		{"rate_limits:\n  - {name: a, key: user, per: fortnight, messages: 1}\n", "t.yaml:2: invalid window \"fortnight\""},
		{"rate_limits:\n  - {name: a, key: user, per: 500ms, messages: 1}\n", "t.yaml:2: rate limit a: per must be minute, hour, day or a duration of at least 1s"},
		{"rate_limits:\n  - {name: a, key: user, per: hour, messages: 1, action: reject}\n", "t.yaml:2: rate limit a: action must be defer or quarantine"},
		{"rate_limits:\n  - {name: a, key: user, per: hour, messages: 1}\n  - {name: a, key: listener, per: hour, messages: 1}\n", "t.yaml:3: rate limit name \"a\" is used twice"},
		{"rate_limits:\n  - {name: 'a b', key: user, per: hour, messages: 1}\n", "t.yaml:2: rate limit 1: name must be"},
		{"rate_limits:\n  - {name: a, key: user, per: hour, messages: 1, ipv4_prefix: 24}\n", "t.yaml:2: rate limit a: ipv4_prefix and ipv6_prefix are for key client_ip"},
		{"rate_limits:\n  - {name: a, key: client_ip, per: hour, messages: 1, ipv6_prefix: 129}\n", "t.yaml:2: rate limit a: ipv4_prefix must be 1-32 and ipv6_prefix 1-128"},
		{"rate_limits:\n  - {name: a, key: user, per: hour, messages: -1}\n", "t.yaml:2: rate limit a: needs messages or recipients"},
	} {
		_, err := Parse("t.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to contain %q", c.yaml, err, c.want)
		}
	}
}

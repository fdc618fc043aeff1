package config

import (
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bccguard/bccguard/config/yamlnode"
)

// Keys a rate limit counts by.
const (
	RateKeyUser         = "user"          // the SMTP AUTH identity (clients that did not log in are not counted)
	RateKeySenderDomain = "sender_domain" // the MAIL FROM domain, lowercased ("" for the null sender)
	RateKeyClientIP     = "client_ip"     // the client's address, or its network with ipv4_prefix/ipv6_prefix
	RateKeyListener     = "listener"      // the listener's name
)

// What a rate limit does with a transaction over it.
const (
	RateActionDefer      = "defer"      // 451 4.7.0 at MAIL FROM, 452 4.5.3 at RCPT TO: the client retries later
	RateActionQuarantine = "quarantine" // accept and hold for review with rule rate-limit:NAME
)

// RateLimit is one entry of rate_limits: at most Messages messages and
// Recipients recipients per Per, counted separately for each value of Key.
type RateLimit struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
	// Per is the window: minute, hour, day, or a duration of at least one
	// second (30s, 10m, 7d). Counts slide: each is over the last Per.
	Per RateWindow `yaml:"per"`
	// Messages and Recipients bound the counts; 0 leaves that count
	// unbounded (one of them is needed).
	Messages   int64 `yaml:"messages"`
	Recipients int64 `yaml:"recipients"`
	// Action is defer (the default) or quarantine.
	Action string `yaml:"action"`
	// IPv4Prefix and IPv6Prefix make a client_ip limit count per network
	// (default 32 and 64: one IPv4 address, one IPv6 /64, which is what a
	// single client usually holds).
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
}

// RateWindow is a rate limit's window, written minute, hour, day or as a
// duration.
type RateWindow time.Duration

// MinRateWindow is the shortest window: each is counted in 60 slots.
const MinRateWindow = time.Second

// UnmarshalYAML parses a window.
func (w *RateWindow) UnmarshalYAML(n *yaml.Node) error {
	switch strings.TrimSpace(n.Value) {
	case "minute":
		*w = RateWindow(time.Minute)
		return nil
	case "hour":
		*w = RateWindow(time.Hour)
		return nil
	case "day":
		*w = RateWindow(24 * time.Hour)
		return nil
	}
	var d Duration
	if err := d.UnmarshalYAML(n); err != nil {
		return yamlnode.Errorf(n, "invalid window %q: expected minute, hour, day or a duration such as 30s or 7d", n.Value)
	}
	*w = RateWindow(d)
	return nil
}

// D returns the window as a time.Duration.
func (w RateWindow) D() time.Duration { return time.Duration(w) }

var rateLimitName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// validateRateLimits checks rate_limits and fills in their defaults.
func (c *Config) validateRateLimits() []error {
	var errs []error
	names := map[string]bool{}
	for i := range c.RateLimits {
		l := &c.RateLimits[i]
		at := func(k ...any) []any { return append([]any{"rate_limits", i}, k...) }
		add := func(path []any, format string, args ...any) { errs = append(errs, c.errf(path, format, args...)) }
		switch {
		case !rateLimitName.MatchString(l.Name):
			add(at("name"), "rate limit %d: name must be 1-63 letters, digits, '.', '_' or '-' (it is a metric label and the rule rate-limit:NAME)", i+1)
		case names[l.Name]:
			add(at("name"), "rate limit name %q is used twice", l.Name)
		}
		names[l.Name] = true
		switch l.Key {
		case RateKeyUser, RateKeySenderDomain, RateKeyClientIP, RateKeyListener:
		default:
			add(at("key"), "rate limit %s: key must be user, sender_domain, client_ip or listener, not %q", l.Name, l.Key)
		}
		if l.Per.D() < MinRateWindow {
			add(at("per"), "rate limit %s: per must be minute, hour, day or a duration of at least %v", l.Name, MinRateWindow)
		}
		if l.Messages < 0 || l.Recipients < 0 || l.Messages == 0 && l.Recipients == 0 {
			add(at(), "rate limit %s: needs messages or recipients (or both), positive", l.Name)
		}
		if l.Action == "" {
			l.Action = RateActionDefer
		}
		if l.Action != RateActionDefer && l.Action != RateActionQuarantine {
			add(at("action"), "rate limit %s: action must be defer or quarantine, not %q", l.Name, l.Action)
		}
		if l.Key != RateKeyClientIP && (l.IPv4Prefix != 0 || l.IPv6Prefix != 0) {
			add(at("key"), "rate limit %s: ipv4_prefix and ipv6_prefix are for key client_ip", l.Name)
		}
		if l.IPv4Prefix == 0 {
			l.IPv4Prefix = 32
		}
		if l.IPv6Prefix == 0 {
			l.IPv6Prefix = 64
		}
		if l.IPv4Prefix < 1 || l.IPv4Prefix > 32 || l.IPv6Prefix < 1 || l.IPv6Prefix > 128 {
			add(at("key"), "rate limit %s: ipv4_prefix must be 1-32 and ipv6_prefix 1-128", l.Name)
		}
	}
	return errs
}

package config

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bccguard/bccguard/config/yamlnode"
)

// Duration is a time.Duration written as "30s", "5m", "2h" or "5d".
type Duration time.Duration

// UnmarshalYAML parses a duration; "d" (days) is accepted because queue
// lifetimes are naturally given in days.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	if n.Kind != yaml.ScalarNode || s == "" {
		return yamlnode.Errorf(n, "expected a duration such as 30s, 5m or 5d")
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.ParseFloat(days, 64)
		if err != nil || v < 0 {
			return yamlnode.Errorf(n, "invalid duration %q: expected a duration such as 30s, 5m or 5d", s)
		}
		*d = Duration(time.Duration(v * float64(24*time.Hour)))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return yamlnode.Errorf(n, "invalid duration %q: expected a duration such as 30s, 5m or 5d", s)
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written as a number or with a unit: "50MiB", "512KiB", "10MB".
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// UnmarshalYAML parses a size.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSpace(n.Value)
	if n.Kind != yaml.ScalarNode || v == "" {
		return yamlnode.Errorf(n, "expected a size such as 50MiB")
	}
	mult := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	i, err := strconv.ParseInt(v, 10, 64)
	if err != nil || i < 0 {
		return yamlnode.Errorf(n, "invalid size %q: expected a size such as 50MiB", n.Value)
	}
	*s = Size(i * mult)
	return nil
}

// Prefix is a network in CIDR notation; a bare address means that host only.
type Prefix struct{ netip.Prefix }

// UnmarshalYAML parses a CIDR network or address.
func (p *Prefix) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	if pr, err := netip.ParsePrefix(s); err == nil {
		p.Prefix = pr.Masked()
		return nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		p.Prefix = netip.PrefixFrom(a, a.BitLen())
		return nil
	}
	return yamlnode.Errorf(n, "invalid network %q: expected CIDR such as 10.0.0.0/8 or an address", s)
}

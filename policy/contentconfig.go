package policy

import (
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
	"go.yaml.in/yaml/v3"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/policy/content"
)

// contentSettings are the policy's `content:` section: how the body scan
// reads phone numbers and how far it goes.
type contentSettings struct {
	region string
	limits content.Limits
}

// DefaultPhoneRegion is the region of phone numbers written without a
// country code, where `content.phone_region` is not set.
const DefaultPhoneRegion = "US"

// ScanOptions are the policy's content settings for a Scanner; the
// caller adds the watch list and the temporary folder.
func (p *Policy) ScanOptions() ScanOptions {
	region := p.content.region
	if region == "" {
		region = DefaultPhoneRegion
	}
	return ScanOptions{Limits: p.content.limits.WithDefaults(), PhoneRegion: region, NotPhones: p.notPhones}
}

// contentSection decodes
//
//	content:
//	  phone_region: GB        # ISO 3166 region for numbers without +CC
//	  max_inflated: 512MiB    # bytes decompressed per message
//	  max_entries: 10000      # archive entries per message
//	  max_depth: 8            # archives and attached messages nested
//	  max_ratio: 200          # compression ratio of an entry over 1 MiB
//	  time_limit: 30s         # the whole scan of one message
//	  max_spill: 256MiB       # a ZIP-based attachment copied for reading
func (l *loader) contentSection(n *yaml.Node) contentSettings {
	var c contentSettings
	f := l.Fields(n, "policy content", "phone_region", "max_inflated", "max_entries", "max_depth", "max_ratio", "time_limit", "max_spill")
	if f == nil {
		return c
	}
	if v := f["phone_region"]; v != nil {
		if s, ok := l.Str(v, "content phone_region"); ok {
			r := strings.ToUpper(strings.TrimSpace(s))
			if !phonenumbers.GetSupportedRegions()[r] {
				l.Errorf(v, "content phone_region: %q is not a region code (write an ISO 3166 code such as US, GB, DE)", s)
			}
			c.region = r
		}
	}
	size := func(key string, dst *int64) {
		if v := f[key]; v != nil {
			var s config.Size
			if err := v.Decode(&s); err != nil || s <= 0 {
				l.Errorf(v, "content %s: expected a positive size such as 512MiB", key)
				return
			}
			*dst = int64(s)
		}
	}
	count := func(key string, dst *int) {
		if v := f[key]; v != nil {
			var k int
			if err := v.Decode(&k); err != nil || k <= 0 {
				l.Errorf(v, "content %s: expected a positive whole number", key)
				return
			}
			*dst = k
		}
	}
	size("max_inflated", &c.limits.MaxInflated)
	size("max_spill", &c.limits.MaxSpill)
	count("max_entries", &c.limits.MaxEntries)
	count("max_depth", &c.limits.MaxDepth)
	count("max_ratio", &c.limits.MaxRatio)
	if v := f["time_limit"]; v != nil {
		var d config.Duration
		if err := v.Decode(&d); err != nil || d <= 0 {
			l.Errorf(v, "content time_limit: expected a positive duration such as 30s")
		} else {
			c.limits.Time = time.Duration(d)
		}
	}
	return c
}

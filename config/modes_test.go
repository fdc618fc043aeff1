package config

import (
	"testing"

	"github.com/bccguard/bccguard/internal/lineend"
)

// Each parse function takes exactly its words and names them all when it
// refuses one.
func TestParseModes(t *testing.T) {
	type parse func(string) (string, error)
	wrap := func(f any) parse {
		switch f := f.(type) {
		case func(string) (ListenerTLS, error):
			return func(s string) (string, error) { m, err := f(s); return string(m), err }
		case func(string) (UpstreamTLS, error):
			return func(s string) (string, error) { m, err := f(s); return string(m), err }
		case func(string) (lineend.Mode, error):
			return func(s string) (string, error) { m, err := f(s); return string(m), err }
		case func(string) (StoreBackend, error):
			return func(s string) (string, error) { m, err := f(s); return string(m), err }
		case func(string) (ExpiryAction, error):
			return func(s string) (string, error) { m, err := f(s); return string(m), err }
		case func(string) (LogFormat, error):
			return func(s string) (string, error) { m, err := f(s); return string(m), err }
		case func(string) (LogLevel, error):
			return func(s string) (string, error) { m, err := f(s); return string(m), err }
		case func(string) (ChannelType, error):
			return func(s string) (string, error) { m, err := f(s); return string(m), err }
		case func(string) (WebhookFormat, error):
			return func(s string) (string, error) { m, err := f(s); return string(m), err }
		case func(string) (DigestPeriod, error):
			return func(s string) (string, error) { m, err := f(s); return string(m), err }
		}
		panic("unknown parse function")
	}
	for _, tc := range []struct {
		name  string
		parse parse
		good  []string
		bad   string
		want  string
	}{
		{"listener tls", wrap(ParseListenerTLS), []string{"none", "starttls", "implicit"}, "STARTTLS", `must be none, starttls or implicit, not "STARTTLS"`},
		{"upstream tls", wrap(ParseUpstreamTLS), []string{"none", "opportunistic", "required"}, "may", `must be none, opportunistic or required, not "may"`},
		{"bare newlines", wrap(ParseBareNewlines), []string{"reject", "normalize"}, "allow", `must be reject or normalize, not "allow"`},
		{"store backend", wrap(ParseStoreBackend), []string{"embedded", "postgres"}, "", `must be embedded or postgres, not ""`},
		{"expiry action", wrap(ParseExpiryAction), []string{"delete", "release"}, "keep", `must be delete or release, not "keep"`},
		{"log format", wrap(ParseLogFormat), []string{"text", "json"}, "xml", `must be text or json, not "xml"`},
		{"log level", wrap(ParseLogLevel), []string{"debug", "info", "warn", "error"}, "trace", `must be debug, info, warn or error, not "trace"`},
		{"channel type", wrap(ParseChannelType), []string{"webhook", "email"}, "pager", `must be webhook or email, not "pager"`},
		{"webhook format", wrap(ParseWebhookFormat), []string{"json", "text"}, "xml", `must be json or text, not "xml"`},
		{"digest period", wrap(ParseDigestPeriod), []string{"hourly", "daily"}, "weekly", `must be hourly or daily, not "weekly"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range tc.good {
				if m, err := tc.parse(s); err != nil || m != s {
					t.Errorf("parse(%q) = %q, %v", s, m, err)
				}
			}
			if _, err := tc.parse(tc.bad); err == nil || err.Error() != tc.want {
				t.Errorf("parse(%q) error %v, want %q", tc.bad, err, tc.want)
			}
		})
	}
}

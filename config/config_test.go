package config

import (
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c, err := Parse("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listeners) != 1 || c.Listeners[0].Address != "127.0.0.1:2525" {
		t.Errorf("default listener = %+v", c.Listeners)
	}
	if c.Upstream.Address != "127.0.0.1:25" || c.DataDir != "./data" || c.Admin.Listen != "127.0.0.1:9025" {
		t.Errorf("defaults = upstream %q data %q admin %q", c.Upstream.Address, c.DataDir, c.Admin.Listen)
	}
	l := c.Listeners[0]
	if *l.Auth || l.Limits.MaxMessageSize != 50<<20 || len(l.AllowNetworks) != 2 {
		t.Errorf("default listener settings = %+v", l)
	}
	if l.BareNewlines != "reject" || l.Limits.MaxLineLength != 1<<20 {
		t.Errorf("default bare_newlines %q, max_line_length %d; want reject (the safe choice) and 1 MiB", l.BareNewlines, l.Limits.MaxLineLength)
	}
	if !*c.Log.RedactAddresses {
		t.Error("addresses must be redacted in logs by default")
	}
}

func TestParse(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`
hostname: relay.example.com
listeners:
  - name: submission
    address: 127.0.0.1:2587
    tls: starttls
    tls_cert: cert.pem
    tls_key: key.pem
    allow_networks: [10.0.0.0/8, 192.0.2.7]
    limits:
      max_message_size: 10MiB
      data_timeout: 90s
queue:
  retry_first: 1s
  retry_max: 2s
  lifetime: 5d
`))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listeners[0]
	if !*l.Auth {
		t.Error("a TLS listener offers AUTH by default")
	}
	if l.Limits.MaxMessageSize != 10<<20 || l.Limits.DataTimeout.D() != 90*time.Second {
		t.Errorf("limits = %+v", l.Limits)
	}
	if l.Limits.MaxRecipients != 1000 {
		t.Errorf("unset limits take defaults, got %d", l.Limits.MaxRecipients)
	}
	if got := l.AllowNetworks[1].String(); got != "192.0.2.7/32" {
		t.Errorf("bare address = %s", got)
	}
	if c.Queue.Lifetime.D() != 5*24*time.Hour {
		t.Errorf("lifetime = %v", c.Queue.Lifetime.D())
	}
}

// Every error names the file and the line of the offending key.
func TestErrorsHaveLines(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown key", "hostname: a\nlisteners:\n  - address: 127.0.0.1:25\n    colour: blue\n", `t.yaml:4: listener 1: unknown key "colour"; known keys: address, allow_networks`},
		{"bad tls", "listeners:\n  - address: 127.0.0.1:25\n    tls: maybe\n", "t.yaml:3: listener listener1: tls must be"},
		{"tls without cert", "listeners:\n  - address: 127.0.0.1:25\n    tls: starttls\n", "t.yaml:3: listener listener1: tls starttls needs"},
		{"auth without tls", "listeners:\n  - address: 127.0.0.1:25\n    auth: true\n", "t.yaml:3: listener listener1: auth needs TLS"},
		{"bad duration", "queue:\n  retry_first: soon\n", "t.yaml:2: invalid duration"},
		{"bad size", "listeners:\n  - address: 127.0.0.1:25\n    limits:\n      max_message_size: huge\n", "t.yaml:4: invalid size"},
		{"bad network", "listeners:\n  - address: 127.0.0.1:25\n    allow_networks: [10.0.0.0/33]\n", "t.yaml:3: invalid network"},
		{"bad upstream", "\n\nupstream:\n  address: nowhere\n", "t.yaml:4: upstream.address"},
		{"bad user hash", "auth:\n  users:\n    - name: crm\n      password_hash: secret\n", "t.yaml:3: auth user 1"},
		{"duplicate listener", "listeners:\n  - name: a\n    address: 127.0.0.1:25\n  - name: a\n    address: 127.0.0.1:26\n", "t.yaml:4: listener name"},
		{"yaml syntax", "listeners: [\n", "t.yaml:"},
		{"short lines", "listeners:\n  - address: 127.0.0.1:25\n    limits: {max_line_length: 80}\n", "t.yaml:3: listener listener1: max_line_length"},
		{"bad bare_newlines", "listeners:\n  - address: 127.0.0.1:25\n    bare_newlines: allow\n", "t.yaml:3: listener listener1: bare_newlines must be reject or normalize"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

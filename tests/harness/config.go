package harness

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"
)

// Hostname is the name test relays use in their greeting, Received: headers
// and DSNs.
const Hostname = "bccguard.example.org"

// renderConfig expands a test's configuration template and fills in what it
// leaves out, so a test writes only what it is about.
//
// The template sees:
//
//	{{addr "NAME"}}            127.0.0.1:PORT, a free port reserved for NAME
//	{{port "NAME"}}            that PORT alone
//	{{hostaddr "HOST" "NAME"}} HOST:PORT (e.g. 127.0.0.2 or 0.0.0.0)
//	{{.Dir}}                   a folder for the test's files (certificates, …)
//	{{.DataDir}}               the relay's data folder
//	{{.Upstream}}              the address given with WithUpstream
//
// Top-level keys the text does not set get test defaults: hostname, data_dir,
// admin (on a free port), log (json, debug), queue (retries after 1s, at most
// 2s apart), listeners (one, "smtp", on {{addr "smtp"}}) and, with
// WithUpstream, upstream (that address, no TLS).
func (r *Relay) renderConfig(text string) (string, error) {
	tmpl, err := template.New("config").Option("missingkey=error").Funcs(template.FuncMap{
		"addr": r.AddrOf,
		"port": r.Port,
		"hostaddr": func(host, name string) string {
			return fmt.Sprintf("%s:%d", host, r.Port(name))
		},
	}).Parse(text)
	if err != nil {
		return "", fmt.Errorf("config template: %w", err)
	}
	var b bytes.Buffer
	data := struct{ Dir, DataDir, Upstream string }{r.dir, r.dataDir, r.opts.upstream}
	if err := tmpl.Execute(&b, data); err != nil {
		return "", fmt.Errorf("config template: %w", err)
	}
	out := b.String()

	keys, err := topLevelKeys(out)
	if err != nil {
		return "", fmt.Errorf("config as written by the test: %w\n%s", err, out)
	}
	var add []string
	def := func(key, yml string) {
		if !keys[key] {
			add = append(add, yml)
		}
	}
	def("hostname", "hostname: "+Hostname)
	def("data_dir", fmt.Sprintf("data_dir: %q", r.dataDir))
	def("admin", fmt.Sprintf("admin: {listen: %q}", r.AddrOf("admin")))
	def("log", "log: {format: json, level: debug}")
	def("queue", "queue: {retry_first: 1s, retry_max: 2s, lifetime: 1h}")
	def("listeners", fmt.Sprintf("listeners:\n  - {name: smtp, address: %q}", r.AddrOf("smtp")))
	if r.opts.upstream != "" {
		def("upstream", fmt.Sprintf("upstream: {address: %q, tls: none}", r.opts.upstream))
	}
	if len(add) > 0 {
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		out += "# added by tests/harness\n" + strings.Join(add, "\n") + "\n"
	}
	return out, nil
}

func topLevelKeys(text string) (map[string]bool, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	if len(doc.Content) == 0 {
		return keys, nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("top level is not a mapping")
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		keys[m.Content[i].Value] = true
	}
	return keys, nil
}

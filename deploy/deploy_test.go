// Package deploy holds no code: its tests check the deployment files next
// to them (alert rules, dashboard, Dockerfile, Compose, Kubernetes,
// systemd) for syntax and for consistency with each other and with the
// metrics and defaults of the code.
package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay"
	"github.com/bccguard/bccguard/relay/admin"
	"github.com/bccguard/bccguard/relay/limit"
	"github.com/bccguard/bccguard/relay/notify"
	"github.com/bccguard/bccguard/relay/queueadmin"
	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store/embedded"
	"github.com/bccguard/bccguard/tests/harness"
)

// The contract between the image and everything that runs it.
const (
	smtpPort  = 2525
	adminPort = 9025
	dataDir   = "/var/lib/bccguard"
)

// ---------------------------------------------------------------- Prometheus

func TestAlertRulesPassPromtool(t *testing.T) {
	promtool := harness.ToolOrInstall(t, "promtool")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadAlerts(t *testing.T) []alertRule {
	t.Helper()
	var f struct {
		Groups []struct {
			Name  string      `yaml:"name"`
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, "prometheus/alerts.yml", &f)
	var out []alertRule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("alerts.yml has no rules")
	}
	return out
}

// TestAlertsDocumentedAndTested: every alert has a severity, a summary, a
// description and a runbook, and alerts_test.yml has a case where it fires
// and one where it does not.
func TestAlertsDocumentedAndTested(t *testing.T) {
	alerts := loadAlerts(t)
	var tf struct {
		Tests []struct {
			Name  string `yaml:"name"`
			Cases []struct {
				Alert string `yaml:"alertname"`
				Exp   []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, "prometheus/alerts_test.yml", &tf)
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, c := range tc.Cases {
			if len(c.Exp) > 0 {
				firing[c.Alert] = true
			} else {
				quiet[c.Alert] = true
			}
		}
	}
	for _, a := range alerts {
		if a.Labels["severity"] == "" {
			t.Errorf("%s: no severity label", a.Alert)
		}
		for _, k := range []string{"summary", "description", "runbook"} {
			if strings.TrimSpace(a.Annotations[k]) == "" {
				t.Errorf("%s: no %s annotation", a.Alert, k)
			}
		}
		if !firing[a.Alert] {
			t.Errorf("%s: alerts_test.yml has no case where it fires", a.Alert)
		}
		if !quiet[a.Alert] {
			t.Errorf("%s: alerts_test.yml has no case where it does not fire", a.Alert)
		}
	}
	// The list of what must be alerted on.
	want := []string{"bccguard_upstream_up", "bccguard_queue_deliveries", "bccguard_queue_oldest_age_seconds",
		"bccguard_deliveries_total", "bccguard_quarantine_held", "bccguard_quarantine_oldest_age_seconds",
		"bccguard_policy_last_reload_successful", "bccguard_dkim_sign_failures_total", "bccguard_auth_failures_total",
		"bccguard_tls_certificate_expiry_timestamp_seconds", `up{job="bccguard"}`}
	var all strings.Builder
	for _, a := range alerts {
		all.WriteString(a.Expr)
	}
	for _, w := range want {
		if !strings.Contains(all.String(), w) {
			t.Errorf("no alert uses %s", w)
		}
	}
}

// registeredMetrics are the names of the metrics bccguard registers: the
// relay's, the quarantine review's, the queue commands', the rate
// limits' and the notifications', asked of their collectors (so a
// labelled series that has not been observed yet counts), plus those main
// registers itself.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	cfg, err := config.Parse("", nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := embedded.Open(t.TempDir(), embedded.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rec := &recorder{Registerer: prometheus.NewRegistry()}
	log := slog.New(slog.DiscardHandler)
	if _, err := relay.New(relay.Options{Config: cfg, Store: st, Logger: log, Registerer: rec}); err != nil {
		t.Fatal(err)
	}
	if _, err := review.New(review.Options{Store: st, Config: cfg.Quarantine, Logger: log, Registerer: rec, Hostname: "relay.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := queueadmin.New(queueadmin.Options{Store: st, Logger: log, Registerer: rec, Hostname: "relay.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := limit.New(limit.Options{Counter: st, Logger: log, Registerer: rec}); err != nil {
		t.Fatal(err)
	}
	if _, err := notify.New(notify.Options{Config: cfg, Store: st, Logger: log, Registerer: rec}); err != nil {
		t.Fatal(err)
	}
	admin.NewGuard(admin.GuardOptions{Registerer: rec})   // cmd/bccguard wires one for the admin listener
	names := map[string]bool{"bccguard_build_info": true} // cmd/bccguard
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for _, c := range rec.cs {
		ch := make(chan *prometheus.Desc, 100)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			if m := fq.FindStringSubmatch(d.String()); m != nil {
				names[m[1]] = true
			}
		}
	}
	return names
}

type recorder struct {
	prometheus.Registerer
	cs []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	r.cs = append(r.cs, c)
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var metricName = regexp.MustCompile(`\bbccguard_[a-z0-9_]+`)

// unknownMetrics lists the bccguard metrics expr uses that nothing registers.
func unknownMetrics(expr string, known map[string]bool) []string {
	var out []string
	for _, n := range metricName.FindAllString(expr, -1) {
		base := n
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suf); ok && known[b] {
				base = b
			}
		}
		if !known[base] {
			out = append(out, n)
		}
	}
	return out
}

func TestAlertAndDashboardMetricsExist(t *testing.T) {
	known := registeredMetrics(t)
	for _, a := range loadAlerts(t) {
		if u := unknownMetrics(a.Expr, known); len(u) > 0 {
			t.Errorf("alert %s uses metrics bccguard does not register: %v", a.Alert, u)
		}
	}
	used := map[string]bool{}
	for _, p := range dashboardPanels(t) {
		for _, tg := range p.Targets {
			if u := unknownMetrics(tg.Expr, known); len(u) > 0 {
				t.Errorf("dashboard panel %q uses metrics bccguard does not register: %v", p.Title, u)
			}
			for _, n := range metricName.FindAllString(tg.Expr, -1) {
				used[n] = true
			}
		}
	}
	// What the issue says the dashboard shows.
	for _, n := range []string{"bccguard_messages_accepted_total", "bccguard_policy_decisions_total",
		"bccguard_recipients_protected_total", "bccguard_queue_deliveries", "bccguard_delivery_duration_seconds_bucket",
		"bccguard_quarantine_held"} {
		if !used[n] {
			t.Errorf("the dashboard does not show %s", n)
		}
	}
}

// ---------------------------------------------------------------- Grafana

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string          `json:"refId"`
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("grafana/bccguard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana/bccguard.json: %v", err)
	}
	return d
}

func dashboardPanels(t *testing.T) []panel {
	t.Helper()
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" {
				out = append(out, p)
			}
			walk(p.Panels)
		}
	}
	walk(loadDashboard(t).Panels)
	return out
}

func TestGrafanaDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" {
		t.Error("dashboard needs a title and a uid")
	}
	if d.SchemaVersion < 30 {
		t.Errorf("schemaVersion %d: want a current one (>= 30)", d.SchemaVersion)
	}
	dsVar := ""
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = v.Name
		}
	}
	if dsVar == "" {
		t.Fatal("no datasource template variable of type prometheus")
	}
	ids := map[int]bool{}
	panels := dashboardPanels(t)
	if len(panels) < 10 {
		t.Errorf("only %d panels", len(panels))
	}
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: bad gridPos", p.Title)
		}
		if !strings.Contains(string(p.Datasource), "${"+dsVar+"}") {
			t.Errorf("panel %q: datasource %s does not use ${%s}", p.Title, p.Datasource, dsVar)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.RefID == "" || strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: a target without refId or expr", p.Title)
			}
		}
	}
}

// ---------------------------------------------------------------- Dockerfile

type instruction struct {
	cmd  string // upper case
	args string
}

type stage struct {
	from, name string
	rawFrom    string // as written, before the global ARGs are expanded
	ins        []instruction
}

// dockerfile is a parsed Dockerfile: its global ARGs (those before the
// first FROM, the only ones FROM may use) with their defaults, and its stages.
type dockerfile struct {
	args   map[string]string
	stages []stage
}

// stage returns the stage called name.
func (d dockerfile) stage(name string) (stage, bool) {
	for _, s := range d.stages {
		if s.name == name {
			return s, true
		}
	}
	return stage{}, false
}

func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	globals := map[string]string{} // ARG name -> default
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{rawFrom: f[0], from: os.Expand(f[0], func(k string) string { return globals[k] })}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			return
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Errorf("Dockerfile: %s before FROM", in.cmd)
			}
			k, v, _ := strings.Cut(in.args, "=")
			globals[k] = v
			return
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if l, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), "\\"); ok {
			cur.WriteString(l + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return dockerfile{args: globals, stages: stages}
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

func (s stage) last(cmd string) string {
	a := s.all(cmd)
	if len(a) == 0 {
		return ""
	}
	return a[len(a)-1]
}

// execForm parses a JSON exec-form argument list.
func execForm(t *testing.T, what, s string) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("%s %s: not in exec form: %v", what, s, err)
	}
	return out
}

// image is what the Dockerfile promises to everything that runs it.
type image struct {
	binary     string
	configPath string
	uid        int
	volume     string
	ports      []int
	cmd        []string
}

func dockerImage(t *testing.T) image {
	t.Helper()
	df := parseDockerfile(t, "../Dockerfile")
	stages := df.stages
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a runtime stage", len(stages))
	}
	build, run := stages[0], stages[len(stages)-1]
	if !exactGolang.MatchString(build.from) {
		t.Errorf("build stage FROM %s: want an exact golang:1.26.N release", build.from)
	}
	// scripts/image.sh builds the runtime stage (--target runtime) offline
	// with --build-arg BASE=a local base and BINARY=an image holding the
	// binary; without them it is distroless and the build stage.
	if run.name != "runtime" || run.rawFrom != "${BASE}" {
		t.Errorf("the last stage is FROM %s AS %s: want FROM ${BASE} AS runtime", run.rawFrom, run.name)
	}
	if !pinnedByDigest.MatchString(run.from) {
		t.Errorf("runtime base %s (ARG BASE's default) is not pinned by digest", run.from)
	}
	buildCmd := strings.Join(build.all("RUN"), "\n")
	for _, want := range []string{"CGO_ENABLED=0", "go build", "./cmd/bccguard"} {
		if !strings.Contains(buildCmd, want) {
			t.Errorf("build stage does not run %q", want)
		}
	}
	if !strings.Contains(run.from, "distroless/static") && !strings.Contains(run.from, "alpine") {
		t.Errorf("runtime stage FROM %s: want a small image (distroless static or alpine)", run.from)
	}
	var img image
	user := run.last("USER")
	uid, err := strconv.Atoi(strings.Split(user, ":")[0])
	if err != nil || uid == 0 {
		t.Errorf("runtime USER %q: want a numeric non-root uid (Kubernetes runAsNonRoot needs one)", user)
	}
	img.uid = uid
	vols := run.all("VOLUME")
	if len(vols) != 1 {
		t.Fatalf("runtime stage has %d VOLUMEs, want 1", len(vols))
	}
	img.volume = strings.Trim(vols[0], `[]" `)
	for _, e := range strings.Fields(strings.Join(run.all("EXPOSE"), " ")) {
		p, err := strconv.Atoi(strings.TrimSuffix(e, "/tcp"))
		if err != nil {
			t.Errorf("EXPOSE %q", e)
		}
		img.ports = append(img.ports, p)
	}
	slices.Sort(img.ports)
	if !slices.Equal(img.ports, []int{smtpPort, adminPort}) {
		t.Errorf("EXPOSE %v, want %d and %d", img.ports, smtpPort, adminPort)
	}
	ep := execForm(t, "ENTRYPOINT", run.last("ENTRYPOINT"))
	img.binary = ep[0]
	copied := false
	for _, c := range run.all("COPY") {
		f := strings.Fields(c)
		from, ok := strings.CutPrefix(f[0], "--from=")
		if !ok || f[len(f)-1] != img.binary {
			continue
		}
		copied = true
		// The binary comes from a stage FROM ${BINARY}, which is the build
		// stage unless the build argument names another image.
		if src, ok := df.stage(from); !ok || src.rawFrom != "${BINARY}" || src.from != build.name {
			t.Errorf("the binary is copied from %q: want a stage FROM ${BINARY}, with BINARY defaulting to the build stage %q", from, build.name)
		}
	}
	if !copied {
		t.Errorf("the runtime stage does not COPY the binary to the ENTRYPOINT %s", img.binary)
	}
	img.cmd = execForm(t, "CMD", run.last("CMD"))
	if img.cmd[0] != "serve" {
		t.Errorf("CMD %v: want serve", img.cmd)
	}
	img.configPath = flagValue(img.cmd, "--config")
	if dd := flagValue(img.cmd, "--data-dir"); dd != "" && dd != img.volume {
		t.Errorf("CMD --data-dir %s is not the VOLUME %s", dd, img.volume)
	}
	// The baked configuration: copied to where CMD reads it, valid, and
	// consistent with the volume and the exposed ports.
	baked := ""
	for _, c := range run.all("COPY") {
		f := strings.Fields(c)
		if !strings.HasPrefix(f[0], "--") && f[len(f)-1] == img.configPath {
			baked = filepath.Join("..", f[0])
		}
	}
	if baked == "" {
		t.Fatalf("the runtime stage does not COPY a configuration to %s", img.configPath)
	}
	cfg := checkConfig(t, baked, img.volume, img.ports)
	if cfg.Admin.Listen == "" {
		t.Error("the image's configuration disables the admin listener the HEALTHCHECK needs")
	}
	hc := run.last("HEALTHCHECK")
	if !strings.Contains(hc, "CMD") || !strings.Contains(hc, img.binary) || !strings.Contains(hc, `"healthcheck"`) {
		t.Errorf("HEALTHCHECK %q: want CMD [%q, \"healthcheck\", ...]", hc, img.binary)
	}
	if img.volume != dataDir {
		t.Errorf("VOLUME %s, want %s", img.volume, dataDir)
	}
	return img
}

var (
	exactGolang    = regexp.MustCompile(`^golang:1\.26\.\d+(-[a-z]+)?(@sha256:[0-9a-f]{64})?$`)
	pinnedByDigest = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
	// exactVersion is a tag naming one release (v2.53.0, 16.4-bookworm),
	// not a moving one (latest, 2, stable).
	exactVersion = regexp.MustCompile(`:v?\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?$`)
)

// pinned reports whether a third-party image reference names one image:
// by digest or by an exact version tag.
func pinned(ref string) bool {
	return pinnedByDigest.MatchString(ref) || exactVersion.MatchString(ref)
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// checkConfig validates a bccguard configuration file and checks that it
// keeps its data in dataDir and listens (SMTP and admin) on ports.
func checkConfig(t *testing.T, path, dataDir string, ports []int) *config.Config {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return checkConfigText(t, path, b, dataDir, ports)
}

func checkConfigText(t *testing.T, name string, b []byte, dataDir string, ports []int) *config.Config {
	t.Helper()
	cfg, err := config.Parse(name, b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if cfg.DataDir != dataDir {
		t.Errorf("%s: data_dir %s, want %s", name, cfg.DataDir, dataDir)
	}
	portOf := func(addr string) int {
		_, p, _ := strings.Cut(addr[strings.LastIndex(addr, ":"):], ":")
		n, _ := strconv.Atoi(p)
		return n
	}
	if p := portOf(cfg.Admin.Listen); !slices.Contains(ports, p) {
		t.Errorf("%s: admin.listen %s is not on an exposed port %v", name, cfg.Admin.Listen, ports)
	}
	if !strings.HasPrefix(cfg.Admin.Listen, "0.0.0.0:") && !strings.HasPrefix(cfg.Admin.Listen, "[::]:") {
		t.Errorf("%s: admin.listen %s is not reachable from outside the container", name, cfg.Admin.Listen)
	}
	for _, l := range cfg.Listeners {
		if p := portOf(l.Address); !slices.Contains(ports, p) && !strings.HasPrefix(l.Address, "127.") {
			t.Errorf("%s: listener %s on %s: port not exposed %v", name, l.Name, l.Address, ports)
		}
	}
	return cfg
}

func TestDockerfile(t *testing.T) { dockerImage(t) }

// ---------------------------------------------------------------- Compose

func TestCompose(t *testing.T) {
	img := dockerImage(t)
	var c struct {
		Services map[string]struct {
			Build   any      `yaml:"build"`
			Image   string   `yaml:"image"`
			Command []string `yaml:"command"`
			Ports   []string `yaml:"ports"`
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	readYAML(t, "compose/docker-compose.yml", &c)
	for _, name := range []string{"bccguard", "postfix", "prometheus"} {
		if s, ok := c.Services[name]; !ok || (s.Image == "" && s.Build == nil) {
			t.Errorf("compose: service %s missing or without image/build", name)
		}
	}
	bg := c.Services["bccguard"]
	if b, ok := bg.Build.(map[string]any); ok {
		ctx, _ := b["context"].(string)
		df, _ := b["dockerfile"].(string)
		if _, err := os.Stat(filepath.Join("compose", ctx, df)); err != nil {
			t.Errorf("compose: bccguard build: %v", err)
		}
	} else {
		t.Error("compose: bccguard is not built from the repository's Dockerfile")
	}
	var published []int
	for _, p := range bg.Ports {
		f := strings.Split(p, ":")
		n, err := strconv.Atoi(f[len(f)-1])
		if err != nil {
			t.Errorf("compose: port %q", p)
		}
		published = append(published, n)
	}
	slices.Sort(published)
	if !slices.Equal(published, img.ports) {
		t.Errorf("compose: bccguard publishes container ports %v, the image exposes %v", published, img.ports)
	}
	mounts := map[string]string{} // target -> source
	for _, v := range bg.Volumes {
		f := strings.Split(v, ":")
		mounts[f[1]] = f[0]
	}
	if _, ok := mounts[img.volume]; !ok {
		t.Errorf("compose: nothing is mounted on the image's VOLUME %s", img.volume)
	}
	cfgPath := img.configPath
	if p := flagValue(bg.Command, "--config"); p != "" {
		cfgPath = p
	}
	src, ok := mounts[cfgPath]
	if !ok {
		t.Fatalf("compose: no configuration mounted at %s", cfgPath)
	}
	checkConfig(t, filepath.Join("compose", src), img.volume, img.ports)

	// Prometheus scrapes bccguard's admin port as job "bccguard" and loads
	// the alert rules.
	var pc struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "compose/prometheus.yml", &pc)
	scraped := false
	for _, sc := range pc.ScrapeConfigs {
		for _, s := range sc.StaticConfigs {
			if sc.JobName == "bccguard" && slices.Contains(s.Targets, fmt.Sprintf("bccguard:%d", adminPort)) {
				scraped = true
			}
		}
	}
	if !scraped {
		t.Errorf("compose/prometheus.yml: no job \"bccguard\" scraping bccguard:%d", adminPort)
	}
	pm := map[string]string{}
	for _, v := range c.Services["prometheus"].Volumes {
		f := strings.Split(v, ":")
		pm[f[1]] = f[0]
	}
	for _, rf := range pc.RuleFiles {
		src, ok := pm[filepath.Join("/etc/prometheus", rf)]
		if !ok {
			t.Errorf("compose: rule file %s is not mounted into prometheus", rf)
		} else if filepath.Clean(filepath.Join("compose", src)) != filepath.Clean("prometheus/alerts.yml") {
			t.Errorf("compose: rule file %s comes from %s, not deploy/prometheus/alerts.yml", rf, src)
		}
	}
	if p := findProm(t); p != "" {
		dir := t.TempDir()
		copyFile(t, "compose/prometheus.yml", filepath.Join(dir, "prometheus.yml"))
		copyFile(t, "prometheus/alerts.yml", filepath.Join(dir, "alerts.yml"))
		if out, err := exec.Command(p, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
			t.Errorf("promtool check config compose/prometheus.yml: %v\n%s", err, out)
		}
	}
}

func findProm(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		return ""
	}
	return p
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------- Kubernetes

type k8sObject map[string]any

func (o k8sObject) kind() string { s, _ := o["kind"].(string); return s }
func (o k8sObject) name() string { return str(get(o, "metadata", "name")) }

func get(v any, path ...any) any {
	if o, ok := v.(k8sObject); ok {
		v = map[string]any(o)
	}
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string { s, _ := v.(string); return s }

func list(v any) []any { l, _ := v.([]any); return l }

func stringMap(v any) map[string]string {
	out := map[string]string{}
	m, _ := v.(map[string]any)
	for k, x := range m {
		out[k] = fmt.Sprint(x)
	}
	return out
}

// selects reports whether every selector label is among labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func loadManifests(t *testing.T, path string) []k8sObject {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var out []k8sObject
	for {
		var raw map[string]any // not k8sObject: yaml.v3 would give nested maps that type too
		err := dec.Decode(&raw)
		o := k8sObject(raw)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if o == nil {
			continue
		}
		if str(o["apiVersion"]) == "" || o.kind() == "" || o.name() == "" {
			t.Errorf("%s: a document without apiVersion, kind or metadata.name: %v", path, o)
		}
		out = append(out, o)
	}
	return out
}

func TestKubernetesManifests(t *testing.T) {
	img := dockerImage(t)
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in kubernetes/: %v", err)
	}
	kinds := map[string]bool{}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			objs := loadManifests(t, file)
			byKind := map[string][]k8sObject{}
			for _, o := range objs {
				byKind[o.kind()] = append(byKind[o.kind()], o)
				kinds[o.kind()] = true
			}
			workloads := append(byKind["StatefulSet"], byKind["Deployment"]...)
			if len(workloads) != 1 {
				t.Fatalf("%d workloads (StatefulSet/Deployment), want 1", len(workloads))
			}
			checkWorkload(t, workloads[0], objs, img)
		})
	}
	for _, k := range []string{"StatefulSet", "Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "ServiceMonitor"} {
		if !kinds[k] {
			t.Errorf("no %s among the manifests", k)
		}
	}
}

func checkWorkload(t *testing.T, w k8sObject, objs []k8sObject, img image) {
	t.Helper()
	podLabels := stringMap(get(w, "spec", "template", "metadata", "labels"))
	if !selects(stringMap(get(w, "spec", "selector", "matchLabels")), podLabels) {
		t.Errorf("%s %s: selector does not match the pod template's labels", w.kind(), w.name())
	}
	pod := get(w, "spec", "template", "spec")
	containers := list(get(pod, "containers"))
	if len(containers) != 1 {
		t.Fatalf("%d containers, want 1", len(containers))
	}
	c := containers[0]
	if image := str(get(c, "image")); !strings.Contains(image, "bccguard") {
		t.Errorf("container image %q", image)
	}
	portByName := map[string]int{}
	var ports []int
	for _, p := range list(get(c, "ports")) {
		n, _ := get(p, "containerPort").(int)
		portByName[str(get(p, "name"))] = n
		ports = append(ports, n)
	}
	slices.Sort(ports)
	if !slices.Equal(ports, img.ports) {
		t.Errorf("container ports %v, the image exposes %v", ports, img.ports)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		hg := get(c, probe, "httpGet")
		if hg == nil {
			t.Errorf("no %s.httpGet", probe)
			continue
		}
		if str(get(hg, "path")) != path {
			t.Errorf("%s path %v, want %s", probe, get(hg, "path"), path)
		}
		port := get(hg, "port")
		if n, ok := port.(int); (ok && n != adminPort) || (!ok && portByName[str(port)] != adminPort) {
			t.Errorf("%s port %v is not the admin port %d", probe, port, adminPort)
		}
	}
	nonRoot := get(pod, "securityContext", "runAsNonRoot") == true || get(c, "securityContext", "runAsNonRoot") == true
	if !nonRoot {
		t.Error("runAsNonRoot is not set")
	}
	if get(c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if uid, ok := get(pod, "securityContext", "runAsUser").(int); ok && uid != img.uid {
		t.Errorf("runAsUser %d differs from the image's USER %d", uid, img.uid)
	}

	// Mounts: the data volume on the image's VOLUME, the configuration
	// from the ConfigMap where --config reads it.
	mounts := map[string]string{} // mountPath -> volume name
	for _, m := range list(get(c, "volumeMounts")) {
		mounts[str(get(m, "mountPath"))] = str(get(m, "name"))
	}
	dataVol, ok := mounts[img.volume]
	if !ok {
		t.Errorf("nothing mounted on the image's VOLUME %s", img.volume)
	}
	volumes := map[string]any{}
	for _, v := range list(get(pod, "volumes")) {
		volumes[str(get(v, "name"))] = v
	}
	switch w.kind() {
	case "StatefulSet":
		found := false
		for _, vct := range list(get(w, "spec", "volumeClaimTemplates")) {
			if str(get(vct, "metadata", "name")) == dataVol {
				found = true
			}
		}
		if !found {
			t.Errorf("StatefulSet: the data volume %q is not a volumeClaimTemplate", dataVol)
		}
	case "Deployment":
		if _, ok := volumes[dataVol]; !ok {
			t.Errorf("Deployment: no volume %q", dataVol)
		}
	}
	args := list(get(c, "args"))
	var argv []string
	for _, a := range args {
		argv = append(argv, str(a))
	}
	cfgPath := flagValue(argv, "--config")
	if len(argv) == 0 || argv[0] != "serve" || cfgPath == "" {
		t.Fatalf("container args %v: want serve --config FILE", argv)
	}
	vol, ok := volumes[mounts[filepath.Dir(cfgPath)]]
	cmName := str(get(vol, "configMap", "name"))
	if !ok || cmName == "" {
		t.Fatalf("--config %s is not in a mounted ConfigMap", cfgPath)
	}
	var cm k8sObject
	for _, o := range objs {
		if o.kind() == "ConfigMap" && o.name() == cmName {
			cm = o
		}
	}
	text := str(get(cm, "data", filepath.Base(cfgPath)))
	if text == "" {
		t.Fatalf("ConfigMap %s has no key %s", cmName, filepath.Base(cfgPath))
	}
	cfg := checkConfigText(t, "ConfigMap "+cmName, []byte(text), img.volume, img.ports)
	for _, f := range cfg.Auth.PasswordFiles {
		if _, ok := volumes[mounts[filepath.Dir(f)]]; !ok {
			t.Errorf("password file %s is not in a mounted volume", f)
		}
	}
	for _, v := range volumes {
		if sn := str(get(v, "secret", "secretName")); sn != "" && sn != "bccguard-redact-key" {
			found := false
			for _, o := range objs {
				found = found || (o.kind() == "Secret" && o.name() == sn)
			}
			if !found {
				t.Errorf("secret %s is mounted but not defined", sn)
			}
		}
	}

	// The Service selects the pods and names their ports; the
	// ServiceMonitor selects the Service and scrapes its admin port; a
	// PodDisruptionBudget selects the pods.
	var svcLabels map[string]string
	svcPorts := map[string]bool{}
	for _, o := range objs {
		if o.kind() != "Service" {
			continue
		}
		if !selects(stringMap(get(o, "spec", "selector")), podLabels) {
			t.Errorf("Service %s does not select the pods", o.name())
		}
		svcLabels = stringMap(get(o, "metadata", "labels"))
		for _, p := range list(get(o, "spec", "ports")) {
			svcPorts[str(get(p, "name"))] = true
			tp := get(p, "targetPort")
			if n, ok := tp.(int); ok && !slices.Contains(ports, n) || !ok && portByName[str(tp)] == 0 {
				t.Errorf("Service %s: targetPort %v is not a container port", o.name(), tp)
			}
		}
		if w.kind() == "StatefulSet" && str(get(w, "spec", "serviceName")) != o.name() {
			t.Errorf("StatefulSet serviceName %v, the Service is %s", get(w, "spec", "serviceName"), o.name())
		}
	}
	if svcLabels == nil {
		t.Fatal("no Service")
	}
	monitors := 0
	for _, o := range objs {
		switch o.kind() {
		case "ServiceMonitor":
			monitors++
			if !selects(stringMap(get(o, "spec", "selector", "matchLabels")), svcLabels) {
				t.Errorf("ServiceMonitor %s does not select the Service's labels %v", o.name(), svcLabels)
			}
			for _, ep := range list(get(o, "spec", "endpoints")) {
				port := str(get(ep, "port"))
				if !svcPorts[port] || portByName[port] != adminPort {
					t.Errorf("ServiceMonitor %s scrapes port %q, not the Service's admin port", o.name(), port)
				}
				if p := str(get(ep, "path")); p != "" && p != "/metrics" {
					t.Errorf("ServiceMonitor %s scrapes %s", o.name(), p)
				}
			}
		case "PodDisruptionBudget":
			if !selects(stringMap(get(o, "spec", "selector", "matchLabels")), podLabels) {
				t.Errorf("PodDisruptionBudget %s does not select the pods", o.name())
			}
		}
	}
	if monitors != 1 {
		t.Errorf("%d ServiceMonitors, want 1", monitors)
	}
}

// ---------------------------------------------------------------- systemd

func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("systemd/bccguard.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("unit line %q is not key=value", line)
			continue
		}
		keys[section+"."+k] = append(keys[section+"."+k], v)
	}
	one := func(k string) string {
		v := keys["Service."+k]
		if len(v) == 0 {
			return "<unset>"
		}
		return v[len(v)-1]
	}
	want := map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
		"ProtectControlGroups": "yes", "RestrictNamespaces": "yes", "RestrictSUIDSGID": "yes",
		"LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
		"StateDirectory": "bccguard", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
	}
	for k, v := range want {
		if got := one(k); got != v {
			t.Errorf("[Service] %s=%s, want %s=%s", k, got, k, v)
		}
	}
	if !slices.Contains(keys["Service.SystemCallFilter"], "@system-service") {
		t.Error("no SystemCallFilter=@system-service")
	}
	if fams := strings.Fields(one("RestrictAddressFamilies")); !slices.Equal(fams, []string{"AF_UNIX", "AF_INET", "AF_INET6"}) {
		t.Errorf("RestrictAddressFamilies=%v", fams)
	}
	if u := one("User"); (u == "<unset>" || u == "root") && one("DynamicUser") != "yes" {
		t.Error("the service runs as root: set User= or DynamicUser=yes")
	}
	start := strings.Fields(one("ExecStart"))
	if len(start) < 2 || start[1] != "serve" || flagValue(start, "--data-dir") != dataDir {
		t.Errorf("ExecStart=%v: want BINARY serve ... --data-dir %s (the StateDirectory)", start, dataDir)
	}
	if !strings.Contains(one("ExecReload"), "-HUP") {
		t.Error("ExecReload does not send SIGHUP")
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		// verify wants the binaries to exist: stand one in for bccguard.
		dir := t.TempDir()
		unit := strings.ReplaceAll(string(b), start[0], "/bin/true")
		if err := os.WriteFile(filepath.Join(dir, "bccguard.service"), []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sa, "verify", filepath.Join(dir, "bccguard.service")).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
}

// ---------------------------------------------------------------- helpers

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestREADMEDocumentsEveryMetric: the metrics reference in README.md names
// every metric bccguard registers, and nothing that does not exist.
func TestREADMEDocumentsEveryMetric(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	known := registeredMetrics(t)
	for n := range known {
		if !strings.Contains(readme, "`"+n+"`") {
			t.Errorf("README.md's metrics reference does not document %s", n)
		}
	}
	for _, n := range metricName.FindAllString(readme, -1) {
		if u := unknownMetrics(n, known); len(u) > 0 {
			t.Errorf("README.md names %s, which bccguard does not register", n)
		}
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/control/controltest"
	"github.com/bccguard/bccguard/relay/notify"
	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/review/reviewtest"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/embedded"
)

// relayFixture is what `bccguard serve` runs for the CLI: the embedded
// store, the review service (with the real notifier) and the control
// socket, in a temp data folder.
type relayFixture struct {
	dir string
	st  *embedded.Store
}

func startRelay(t *testing.T) *relayFixture {
	t.Helper()
	f := reviewtest.NewService(t, func(f *reviewtest.Fixture, o *review.Options) {
		cfg := config.Defaults()
		notes, err := notify.New(notify.Options{Config: cfg, Store: f.Store, Logger: slog.New(slog.DiscardHandler), Registerer: f.Registry})
		if err != nil {
			t.Fatal(err)
		}
		o.Config, o.Hostname, o.Notify, o.Now = cfg.Quarantine, cfg.Hostname, notes, nil
	})
	controltest.Serve(t, f)
	return &relayFixture{dir: f.Dir, st: f.Store}
}

const cliMessage = "From: Shop <news@shop.example>\r\nTo: \"Ann\" <ann@one.example>, bob@two.example\r\nSubject: Survey\r\n\r\nPlease answer.\r\n"

func (f *relayFixture) hold(t *testing.T, rule string) string {
	t.Helper()
	return reviewtest.Hold(t, f.st, cliMessage, store.Message{
		Envelope: store.Envelope{Sender: "news@shop.example", Recipients: []store.Recipient{{Addr: "ann@one.example"}, {Addr: "bob@two.example"}}},
		Client:   store.Client{Listener: "smtp", IP: "192.0.2.1", User: "crm"},
		Quarantine: &store.Quarantine{Rule: rule, Reason: "visible.external >= 2", ExpiresAt: time.Now().Add(time.Hour),
			Visible: []store.VisibleRecipient{{Name: "Ann", Address: "ann@one.example", Field: "to"}, {Address: "bob@two.example", Field: "to"}}},
	})
}

func runCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestQuarantineCLI(t *testing.T) {
	f := startRelay(t)
	a, b, c := f.hold(t, "many-visible"), f.hold(t, "many-visible"), f.hold(t, "promo")
	dd := []string{"--data-dir", f.dir}
	me, _ := user.Current()

	cfgFile := filepath.Join(t.TempDir(), "bccguard.yaml")
	if err := os.WriteFile(cfgFile, []byte("data_dir: "+f.dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		args []string
		code int
		out  []string // substrings of standard output
		err  string   // substring of standard error
	}{
		{"no subcommand", nil, exitUsage, nil, "needs a subcommand"},
		{"unknown subcommand", []string{"frob"}, exitUsage, nil, "unknown quarantine subcommand"},
		{"show without ID", append([]string{"show"}, dd...), exitUsage, nil, "needs one message ID"},
		{"list with an ID", append([]string{"list", "X"}, dd...), exitUsage, nil, "takes no argument"},
		{"flag of another subcommand", append([]string{"list", "--as", "bcc"}, dd...), exitUsage, nil, "does not take --as"},
		{"unknown flag", append([]string{"list", "--colour"}, dd...), exitUsage, nil, "flag provided but not defined"},
		{"bad state", append([]string{"list", "--state", "frozen"}, dd...), exitUsage, nil, "unknown state"},
		{"list", append([]string{"list"}, dd...), exitOK, []string{"ID", a, b, c, "Survey", "3 of 3 shown"}, ""},
		{"list by config", []string{"list", "--rule", "promo", "--config", cfgFile}, exitOK, []string{c, "1 of 1 shown"}, ""},
		{"show", append([]string{"show", a}, dd...), exitOK,
			[]string{"ID:          " + a, "many-visible: visible.external >= 2", "user crm", `to  "Ann" <ann@one.example>`, "Please answer."}, ""},
		{"show unknown", append([]string{"show", "NOSUCH"}, dd...), exitFailure, nil, "not_found"},
		{"raw", append([]string{"raw", a}, dd...), exitOK, []string{cliMessage}, ""},
		{"as-is needs force", append([]string{"release", a, "--as", "as-is"}, dd...), exitFailure, nil, "needs force"},
		{"stranger recipient", append([]string{"release", a, "--rcpt", "eve@evil.example"}, dd...), exitFailure, nil, "not envelope recipients"},
		{"release", append([]string{"release", "--as", "bcc", a, "--rcpt", "ann@one.example"}, dd...), exitOK,
			[]string{a + ": released as bcc: 1 deliveries to 1 recipients queued"}, ""},
		{"release again", append([]string{"release", a}, dd...), exitFailure, nil, "not_held"},
		{"delete", append([]string{"delete", b, "--notify-sender"}, dd...), exitOK, []string{b + ": deleted; the sender will be notified"}, ""},
		{"bulk dry run", append([]string{"bulk-delete", "--rule", "promo", "--dry-run"}, dd...), exitOK,
			[]string{"dry run: delete would apply to 1 held messages", c}, ""},
		{"bulk without filter", append([]string{"bulk-release"}, dd...), exitFailure, nil, "needs a filter"},
		{"bulk", append([]string{"bulk-release", "--rule", "promo"}, dd...), exitOK, []string{c + ": released", "1 matched, 1 done, 0 failed"}, ""},
		{"audit", append([]string{"audit", "--target", a}, dd...), exitOK, []string{"cli:" + me.Username, "release-bcc", "not_held"}, ""},
		{"not running", []string{"list", "--data-dir", t.TempDir()}, exitFailure, nil, "no running bccguard"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(append([]string{"quarantine"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, s := range tc.out {
				if !strings.Contains(out, s) {
					t.Fatalf("stdout lacks %q:\n%s", s, out)
				}
			}
			if !strings.Contains(errOut, tc.err) {
				t.Fatalf("stderr lacks %q:\n%s", tc.err, errOut)
			}
		})
	}

	// --json is the API's JSON.
	code, out, _ := runCLI("quarantine", "list", "--state", "all", "--json", "--data-dir", f.dir)
	var p review.Page
	if code != exitOK || json.Unmarshal([]byte(out), &p) != nil || p.Total != 3 {
		t.Fatalf("list --json: %d %s", code, out)
	}
	states := map[string]store.HoldState{}
	for _, h := range p.Items {
		states[h.ID] = h.State
	}
	if states[a] != store.HoldReleased || states[b] != store.HoldDeleted || states[c] != store.HoldReleased {
		t.Fatalf("states %v", states)
	}
	code, out, _ = runCLI("quarantine", "show", b, "--json", "--data-dir", f.dir)
	var d review.Detail
	if code != exitOK || json.Unmarshal([]byte(out), &d) != nil || d.Resolution == nil || d.Resolution.Actor != "cli:"+me.Username {
		t.Fatalf("show --json: %d %s", code, out)
	}
}

package harness

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// ChromiumEnv names an environment variable that, when set, is the Chromium
// (or Chrome) binary the browser tests run instead of Debian's chromium.
const ChromiumEnv = "BCCGUARD_CHROMIUM"

// Chromium returns the path of the Chromium binary for the browser tests. It
// fails the test, saying how to get one, if there is none:
// scripts/install-test-deps.sh installs Debian's chromium package.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(ChromiumEnv); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/lib/chromium/chromium"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("Chromium is not installed, and the browser tests need it: run scripts/install-test-deps.sh "+
		"(make test does; it installs Debian's chromium package), or set %s to a Chromium or Chrome binary", ChromiumEnv)
	return ""
}

// ChromiumFlags are the flags the browser tests run Chromium with: headless,
// as root in a container (no sandbox), with a fresh profile, and with no
// network but loopback: every host name fails to resolve, and anything not
// on loopback would go to a proxy that is not there (loopback itself never
// goes through a proxy). No background traffic: no component updates, sync,
// QUIC probes or first-run pages.
func ChromiumFlags(userDataDir string) []chromedp.ExecAllocatorOption {
	flags := []chromedp.ExecAllocatorOption{
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints,AutofillServerCommunication,InterestFeedContentSuggestions"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"),
		chromedp.Flag("proxy-server", "http://127.0.0.1:9"),
		chromedp.Flag("window-size", "1360,860"),
		chromedp.UserDataDir(userDataDir),
	}
	return flags
}

// Browser is a headless Chromium for one test, driven with chromedp over
// a pipe (no DevTools port is opened).
type Browser struct {
	// Ctx is the chromedp context of the browser's one tab.
	Ctx context.Context

	mu       sync.Mutex
	requests []string
}

// NewBrowser starts Chromium with ChromiumFlags and a profile in a new
// temporary folder; it is stopped when ctx ends or the test does. Every URL
// the tab requests is recorded (Requests).
func NewBrowser(t testing.TB, ctx context.Context) *Browser {
	t.Helper()
	exe := Chromium(t)
	profile := filepath.Join(t.TempDir(), "chromium-profile")
	opts := append(ChromiumFlags(profile), chromedp.ExecPath(exe))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &Browser{Ctx: bctx}
	// Starts the browser, so a missing library or a crash is reported here.
	if err := chromedp.Listen(bctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.requests = append(b.requests, e.Request.URL)
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("start Chromium (%s): %v", exe, err)
	}
	return b
}

// Requests lists the URLs the tab requested, in order.
func (b *Browser) Requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...)
}

// Foreign lists the requested URLs that are not under origin (scheme, host
// and port, e.g. "http://127.0.0.1:9025").
func (b *Browser) Foreign(origin string) []string {
	var out []string
	for _, u := range b.Requests() {
		if u != origin && !strings.HasPrefix(u, origin+"/") && u != "about:blank" {
			out = append(out, u)
		}
	}
	return out
}

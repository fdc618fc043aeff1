package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/review"
)

func hash(t *testing.T, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestBasicAuthCache(t *testing.T) {
	b, err := NewBasicAuth([]config.AdminUser{{Name: "alice", PasswordHash: hash(t, "pw"), Role: config.RoleReviewer}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	b.now = func() time.Time { return now }
	if a := b.Verify("alice", "pw"); a == nil || a.Name != "alice" || a.Role != config.RoleReviewer || a.Via != review.ViaAPI {
		t.Fatalf("Verify = %+v", a)
	}
	if len(b.cache) != 1 {
		t.Fatalf("cache has %d entries after a success", len(b.cache))
	}
	// A cached success is no pass for another password or user.
	for _, c := range [][2]string{{"alice", "PW"}, {"alice", ""}, {"bob", "pw"}, {"alice\x00", "pw"}} {
		if a := b.Verify(c[0], c[1]); a != nil {
			t.Fatalf("Verify(%q, %q) = %+v", c[0], c[1], a)
		}
	}
	if len(b.cache) != 1 {
		t.Fatalf("failures were cached: %d entries", len(b.cache))
	}
	// Served from the cache: swap the hash and the old password still
	// works until the entry expires, then no more.
	b.users["alice"] = basicUser{hash: []byte(hash(t, "new")), role: config.RoleReviewer}
	if b.Verify("alice", "pw") == nil {
		t.Fatal("cached success not used")
	}
	now = now.Add(basicCacheTTL + time.Second)
	if b.Verify("alice", "pw") != nil {
		t.Fatal("expired cache entry still trusted")
	}
	if b.Verify("alice", "new") == nil {
		t.Fatal("new password refused")
	}
}

func TestIdentify(t *testing.T) {
	sum := sha256.Sum256([]byte("tok"))
	a, err := AuthFromConfig(config.Admin{
		Tokens: []config.AdminToken{{Name: "ci", SHA256: hex.EncodeToString(sum[:]), Role: config.RoleViewer}},
		Users:  []config.AdminUser{{Name: "alice", PasswordHash: hash(t, "pw"), Role: config.RoleReviewer}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		set     func(*http.Request)
		actor   string
		badCred bool
	}{
		{"none", func(*http.Request) {}, "", false},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") }, "ci", false},
		{"bearer lower case", func(r *http.Request) { r.Header.Set("Authorization", "bearer tok") }, "ci", false},
		{"wrong bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok2") }, "", true},
		{"basic", func(r *http.Request) { r.SetBasicAuth("alice", "pw") }, "alice", false},
		{"wrong basic", func(r *http.Request) { r.SetBasicAuth("alice", "px") }, "", true},
		{"other scheme", func(r *http.Request) { r.Header.Set("Authorization", "Digest x") }, "", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		c.set(r)
		act, err := a.Identify(r)
		if (err != nil) != c.badCred || (act == nil) != (c.actor == "") || (act != nil && act.Name != c.actor) {
			t.Errorf("%s: Identify = %+v, %v", c.name, act, err)
		}
	}
	if _, err := AuthFromConfig(config.Admin{Tokens: []config.AdminToken{{Name: "x", SHA256: "zz", Role: "viewer"}}}, nil); err == nil {
		t.Fatal("bad token hash accepted")
	}
}

// TestHandler: metrics and health checks are open, the rest needs
// credentials, the actor reaches the API, and browsers' cross-site POSTs
// are refused.
func TestHandler(t *testing.T) {
	sum := sha256.Sum256([]byte("tok"))
	authn, err := AuthFromConfig(config.Admin{Tokens: []config.AdminToken{{Name: "ci", SHA256: hex.EncodeToString(sum[:]), Role: config.RoleReviewer}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var seen review.Actor
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = review.ActorFrom(r.Context())
		_, _ = w.Write([]byte(r.URL.Path))
	})
	h := NewHandler(Options{Gatherer: prometheus.NewRegistry(), Auth: authn, API: api})
	do := func(method, path string, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		if w := do("GET", p); w.Code != 200 {
			t.Fatalf("%s: %d", p, w.Code)
		}
	}
	w := do("GET", "/api/v1/quarantine")
	if w.Code != 401 || !strings.Contains(strings.Join(w.Header().Values("WWW-Authenticate"), ","), "Basic") {
		t.Fatalf("no credentials: %d %v", w.Code, w.Header())
	}
	w = do("GET", "/api/v1/quarantine", "Authorization", "Bearer tok")
	if w.Code != 200 || w.Body.String() != "/quarantine" || seen.Name != "ci" || seen.Role != config.RoleReviewer {
		t.Fatalf("with token: %d %q, actor %+v", w.Code, w.Body.String(), seen)
	}
	w = do("POST", "/api/v1/quarantine/x/release", "Authorization", "Bearer tok", "Sec-Fetch-Site", "cross-site")
	if w.Code != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d", w.Code)
	}
	// Without Auth nothing but the open endpoints answers.
	h = NewHandler(Options{Gatherer: prometheus.NewRegistry(), API: api})
	if w := do("GET", "/api/v1/quarantine", "Authorization", "Bearer tok"); w.Code != 401 {
		t.Fatalf("nil Auth: %d", w.Code)
	}
}

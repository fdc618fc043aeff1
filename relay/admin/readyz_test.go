package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestReadyz: every check must pass; reports are shown but never make the
// relay unready (a down upstream is absorbed by the queue).
func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) string { return "down since 2026-01-01T00:00:00Z: connection refused" }
	for _, tc := range []struct {
		name   string
		checks map[string]Check
		code   int
	}{
		{"all ok, upstream down", map[string]Check{"store": ok, "policy": ok, "listeners": ok}, http.StatusOK},
		{"store failing", map[string]Check{"store": func(context.Context) error { return errors.New("read-only file system") }, "policy": ok, "listeners": ok}, http.StatusServiceUnavailable},
		{"listener stopped", map[string]Check{"store": ok, "policy": ok, "listeners": func(context.Context) error { return errors.New("listener stopped: smtp") }}, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHandler(Options{Checks: tc.checks, Reports: map[string]func(context.Context) string{"upstream": down}})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != tc.code {
				t.Errorf("status %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if got["upstream"] != down(context.Background()) {
				t.Errorf("upstream reported as %q", got["upstream"])
			}
			for name, c := range tc.checks {
				want := "ok"
				if err := c(context.Background()); err != nil {
					want = err.Error()
				}
				if got[name] != want {
					t.Errorf("%s = %q, want %q", name, got[name], want)
				}
			}
		})
	}
}

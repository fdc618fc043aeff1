// Package control is the local channel between the bccguard CLI and the
// running relay: HTTP over a Unix socket in the data folder, as postqueue
// talks to Postfix. The socket's file permissions (0600, owner only) are the
// credentials; nothing listens on the network.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// SocketName is the control socket's file name in the data folder.
const SocketName = "control.sock"

// SocketPath is where the control socket of the relay using dataDir lives.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, SocketName) }

// Listen creates the control socket, replacing a stale one (the store's
// lock on the data folder guarantees no other relay is using it).
func Listen(dataDir string) (net.Listener, error) {
	path := SocketPath(dataDir)
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// Handler serves the control API.
type Handler struct {
	Store store.Store
	// Flushed is called after a flush so delivery starts at once.
	Flushed func()
	mux     *http.ServeMux
}

// NewHandler returns the control API's handler.
func NewHandler(st store.Store, flushed func()) *Handler {
	h := &Handler{Store: st, Flushed: flushed, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /v1/queue", h.list)
	h.mux.HandleFunc("POST /v1/queue/flush", h.flush)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func filterOf(r *http.Request) (store.Filter, error) {
	f := store.Filter{MessageID: r.URL.Query().Get("id")}
	for _, s := range r.URL.Query()["state"] {
		st := store.State(s)
		switch st {
		case store.StateQueued, store.StateDeferred, store.StateDelivered, store.StateBounced, store.StateExpired:
			f.States = append(f.States, st)
		default:
			return f, fmt.Errorf("unknown state %q", s)
		}
	}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return f, fmt.Errorf("bad limit %q", l)
		}
		f.Limit = n
	}
	return f, nil
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	ds, err := h.Store.List(r.Context(), f)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	if ds == nil {
		ds = []store.Delivery{}
	}
	writeJSON(w, ds)
}

func (h *Handler) flush(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	n, err := h.Store.Flush(r.Context(), f, time.Now())
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	if h.Flushed != nil {
		h.Flushed()
	}
	writeJSON(w, map[string]int{"flushed": n})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// Client talks to a running relay's control socket.
type Client struct {
	path string
	http *http.Client
}

// ErrNotRunning means no relay answers on the control socket.
var ErrNotRunning = errors.New("no running bccguard found")

// NewClient returns a client for the relay using dataDir.
func NewClient(dataDir string) *Client {
	path := SocketPath(dataDir)
	return &Client{path: path, http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://bccguard"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) || strings.Contains(err.Error(), "no such file") {
			return fmt.Errorf("%w (control socket %s): %w", ErrNotRunning, c.path, err)
		}
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.Unmarshal(body, &e)
		return fmt.Errorf("relay answered %s: %s", resp.Status, e.Error)
	}
	return json.Unmarshal(body, out)
}

// Query builds the query string for a filter.
func Query(f store.Filter) string {
	v := make([]string, 0, 4)
	for _, s := range f.States {
		v = append(v, "state="+string(s))
	}
	if f.MessageID != "" {
		v = append(v, "id="+f.MessageID)
	}
	if f.Limit > 0 {
		v = append(v, "limit="+strconv.Itoa(f.Limit))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + strings.Join(v, "&")
}

// List returns the queued deliveries matching f.
func (c *Client) List(ctx context.Context, f store.Filter) ([]store.Delivery, error) {
	var out []store.Delivery
	err := c.do(ctx, http.MethodGet, "/v1/queue"+Query(f), &out)
	return out, err
}

// Flush makes deferred deliveries matching f due now and returns how many.
func (c *Client) Flush(ctx context.Context, f store.Filter) (int, error) {
	var out struct{ Flushed int }
	err := c.do(ctx, http.MethodPost, "/v1/queue/flush"+Query(f), &out)
	return out.Flushed, err
}

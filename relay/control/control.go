// Package control is the local channel between the bccguard CLI and the
// running relay: HTTP over a Unix socket in the data folder, as postqueue
// talks to Postfix. The socket's file permissions (0600, owner only) are the
// credentials; nothing listens on the network.
//
// The queue (queueadmin.NewHandler), the quarantine and the audit log
// (review.NewHandler) are the admin listener's APIs themselves, mounted at
// /v1, so the CLI gets exactly what the HTTP API gives, codes and audit
// entries included, as a reviewer named "cli:" and the peer's Unix user.
package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bccguard/bccguard/relay/queueadmin"
	"github.com/bccguard/bccguard/relay/review"
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
	mux *http.ServeMux
}

// NewHandler returns the control API's handler: the queue's API
// (queueadmin.NewHandler) at /v1/queue and, with rev set, the review API
// at /v1/quarantine and /v1/audit. Serve it with NewServer, which tells
// it who the peer is.
func NewHandler(queue *queueadmin.Service, rev *review.Service) *Handler {
	h := &Handler{mux: http.NewServeMux()}
	q := cliActor(http.StripPrefix("/v1", queueadmin.NewHandler(queue)))
	h.mux.Handle("/v1/queue", q)
	h.mux.Handle("/v1/queue/", q)
	if rev != nil {
		api := cliActor(http.StripPrefix("/v1", review.NewHandler(rev)))
		h.mux.Handle("/v1/quarantine", api)
		h.mux.Handle("/v1/quarantine/", api)
		h.mux.Handle("/v1/audit", api)
	}
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// NewServer returns the HTTP server for the control socket: it records each
// connection's peer so actions are audited under the Unix user who ran the
// CLI.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, peerName(c))
		},
	}
}

type peerKey struct{}

// peerName names the Unix user at the other end of c: by SO_PEERCRED where
// the system has it, else the relay's own user (the socket is 0600, so only
// that user, or root, can connect at all).
func peerName(c net.Conn) string {
	uid, ok := peerUID(c)
	if !ok {
		uid = os.Getuid()
	}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid" + strconv.Itoa(uid)
}

// cliActor makes every request on the socket a reviewer's: whoever can
// open the socket can already read and write the data folder.
func cliActor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _ := r.Context().Value(peerKey{}).(string)
		if name == "" {
			name = "unknown"
		}
		a := review.Actor{Name: "cli:" + name, Role: review.RoleReviewer, Via: review.ViaCLI}
		next.ServeHTTP(w, r.WithContext(review.WithActor(r.Context(), a)))
	})
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
	return c.call(ctx, method, path, nil, out)
}

// call sends in (if not nil) as JSON and decodes a 2xx answer into out. A
// review API error comes back as a *review.Error with its code.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://bccguard"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
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
	if w, ok := out.(io.Writer); ok && resp.StatusCode/100 == 2 {
		_, err := io.Copy(w, resp.Body) // a raw message: streamed, not held
		return err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var rev review.ErrorBody
		if json.Unmarshal(b, &rev) == nil && rev.Error != nil && rev.Error.Code != "" {
			return rev.Error
		}
		var e struct{ Error string }
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode == http.StatusNotFound && e.Error == "" {
			return fmt.Errorf("relay answered %s: is it an older bccguard without this command?", resp.Status)
		}
		return fmt.Errorf("relay answered %s: %s", resp.Status, e.Error)
	}
	return json.Unmarshal(b, out)
}

// QuarantineList returns one page of holds matching f.
func (c *Client) QuarantineList(ctx context.Context, f review.Filter) (review.Page, error) {
	var p review.Page
	q := ""
	if v := f.Values(); len(v) > 0 {
		q = "?" + v.Encode()
	}
	err := c.call(ctx, http.MethodGet, "/v1/quarantine"+q, nil, &p)
	return p, err
}

// QuarantineShow returns one hold in detail.
func (c *Client) QuarantineShow(ctx context.Context, id string) (review.Detail, error) {
	var d review.Detail
	err := c.call(ctx, http.MethodGet, "/v1/quarantine/"+url.PathEscape(id), nil, &d)
	return d, err
}

// QuarantineRelease releases a hold (or, under the four-eyes rule, records
// an approval: Status review.StatusNeedsSecondReviewer).
func (c *Client) QuarantineRelease(ctx context.Context, id string, o review.ReleaseOptions) (review.ReleaseResult, error) {
	var r review.ReleaseResult
	err := c.call(ctx, http.MethodPost, "/v1/quarantine/"+url.PathEscape(id)+"/release", o, &r)
	return r, err
}

// QuarantineDelete deletes a hold.
func (c *Client) QuarantineDelete(ctx context.Context, id string, o review.DeleteOptions) (review.DeleteResult, error) {
	var r review.DeleteResult
	err := c.call(ctx, http.MethodPost, "/v1/quarantine/"+url.PathEscape(id)+"/delete", o, &r)
	return r, err
}

// QuarantineBulk runs (or with DryRun counts) a bulk action.
func (c *Client) QuarantineBulk(ctx context.Context, req review.BulkRequest) (review.BulkResult, error) {
	var r review.BulkResult
	err := c.call(ctx, http.MethodPost, "/v1/quarantine/bulk", req, &r)
	return r, err
}

// QuarantineRaw writes the stored message to w.
func (c *Client) QuarantineRaw(ctx context.Context, id string, w io.Writer) error {
	return c.call(ctx, http.MethodGet, "/v1/quarantine/"+url.PathEscape(id)+"/raw", nil, w)
}

// Audit returns audit entries, newest first; q takes the API's query
// parameters (actor, target, since, offset, limit).
func (c *Client) Audit(ctx context.Context, q url.Values) ([]store.AuditEntry, error) {
	var es []store.AuditEntry
	s := ""
	if len(q) > 0 {
		s = "?" + q.Encode()
	}
	err := c.call(ctx, http.MethodGet, "/v1/audit"+s, nil, &es)
	return es, err
}

package review

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// maxBody bounds a POST body: the largest legitimate one is a release to
// a recipient subset.
const maxBody = 1 << 20

// NewHandler returns the JSON API over svc. Its routes are relative to
// where it is mounted (the admin listener mounts it at /api/v1, the
// control socket at /v1):
//
//	GET  /quarantine               List; query as ParseFilter reads it
//	GET  /quarantine/{id}          Show
//	GET  /quarantine/{id}/raw      Raw, as a message/rfc822 attachment
//	POST /quarantine/{id}/release  Release; body ReleaseOptions (200, or 202 for a four-eyes approval)
//	POST /quarantine/{id}/delete   Delete; body DeleteOptions
//	POST /quarantine/bulk          Bulk; body BulkRequest
//	GET  /audit                    Audit; query actor, target, since (RFC 3339 or an age such as 24h, 7d),
//	                               offset, limit; format=jsonl exports everything as JSON lines
//
// POST bodies are JSON (Content-Type: application/json); an empty body
// means the defaults. Errors are {"error": {"code": ..., "message": ...}}
// with the status of Code.HTTPStatus.
//
// The caller authenticates: a request whose context has no Actor
// (WithActor) is answered 401. Reviewer-only routes answer 403 to others
// before reading the body; the Service checks the role again.
func NewHandler(svc *Service) http.Handler {
	h := &api{svc: svc}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /quarantine", h.list)
	mux.HandleFunc("GET /quarantine/{id}", h.show)
	mux.HandleFunc("GET /quarantine/{id}/raw", h.raw)
	mux.HandleFunc("POST /quarantine/{id}/release", h.reviewer("release", h.release))
	mux.HandleFunc("POST /quarantine/{id}/delete", h.reviewer("delete", h.delete))
	mux.HandleFunc("POST /quarantine/bulk", h.reviewer("bulk", h.bulk))
	mux.HandleFunc("GET /audit", h.audit)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// This catch-all also gets routes asked with the wrong method (it
		// matches every method), so it tells those apart.
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			r2 := r.Clone(r.Context())
			r2.Method = m
			if _, pat := mux.Handler(r2); m != r.Method && pat != "/" && pat != "" {
				w.Header().Set("Allow", m)
				WriteError(w, errorf(CodeMethodNotAllowed, "%s %s: use %s", r.Method, r.URL.Path, m))
				return
			}
		}
		WriteError(w, errorf(CodeNotFound, "no such API endpoint: %s %s", r.Method, r.URL.Path))
	})
	return Secure(mux)
}

type api struct{ svc *Service }

// Secure sets what every API answer needs: no caching of quarantined
// content, and nothing a browser could render or sniff; and it refuses
// requests without an actor. The queue's API (relay/queueadmin) sits
// behind it too.
func Secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; sandbox")
		if a, ok := ActorFrom(r.Context()); !ok || a.Name == "" {
			WriteError(w, errorf(CodeUnauthorized, "credentials required"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// reviewer refuses actors who may not act before the body is read, and
// audits the refusal as the Service would.
func (h *api) reviewer(action string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, _ := ActorFrom(r.Context())
		if err := authorize(a, true); err != nil {
			target := r.PathValue("id")
			if target == "" {
				target = "bulk"
			}
			h.svc.record(r.Context(), a, action, target, err)
			WriteError(w, err)
			return
		}
		next(w, r)
	}
}

func actor(r *http.Request) Actor {
	a, _ := ActorFrom(r.Context())
	return a
}

func (h *api) list(w http.ResponseWriter, r *http.Request) {
	f, err := ParseFilter(r.URL.Query())
	if err != nil {
		WriteError(w, err)
		return
	}
	p, err := h.svc.List(r.Context(), actor(r), f)
	respond(w, http.StatusOK, p, err)
}

func (h *api) show(w http.ResponseWriter, r *http.Request) {
	d, err := h.svc.Show(r.Context(), actor(r), r.PathValue("id"))
	respond(w, http.StatusOK, d, err)
}

func (h *api) raw(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rc, err := h.svc.Raw(r.Context(), actor(r), id)
	if err != nil {
		WriteError(w, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": id + ".eml"}))
	_, _ = io.Copy(w, rc)
}

func (h *api) release(w http.ResponseWriter, r *http.Request) {
	var o ReleaseOptions
	if err := DecodeBody(r, &o); err != nil {
		WriteError(w, err)
		return
	}
	res, err := h.svc.Release(r.Context(), actor(r), r.PathValue("id"), o)
	code := http.StatusOK
	if res.Status == StatusNeedsSecondReviewer {
		code = http.StatusAccepted
	}
	respond(w, code, res, err)
}

func (h *api) delete(w http.ResponseWriter, r *http.Request) {
	var o DeleteOptions
	if err := DecodeBody(r, &o); err != nil {
		WriteError(w, err)
		return
	}
	res, err := h.svc.Delete(r.Context(), actor(r), r.PathValue("id"), o)
	respond(w, http.StatusOK, res, err)
}

func (h *api) bulk(w http.ResponseWriter, r *http.Request) {
	var req BulkRequest
	if err := DecodeBody(r, &req); err != nil {
		WriteError(w, err)
		return
	}
	f, act, err := req.Parse()
	if err != nil {
		WriteError(w, err)
		return
	}
	res, err := h.svc.Bulk(r.Context(), actor(r), f, act, req.DryRun)
	respond(w, http.StatusOK, res, err)
}

func (h *api) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.AuditFilter{Actor: q.Get("actor"), Target: q.Get("target")}
	var err error
	if s := q.Get("since"); s != "" {
		if f.Since, err = time.Parse(time.RFC3339, s); err != nil {
			var age time.Duration
			if age, err = ParseAge(s); err == nil {
				f.Since = h.svc.now().Add(-age)
			}
		}
	}
	if err == nil {
		f.Offset, err = intParam(q, "offset")
	}
	if err == nil {
		f.Limit, err = intParam(q, "limit")
	}
	if err != nil {
		WriteError(w, errorf(CodeBadRequest, "since must be an RFC 3339 time or an age such as 24h or 7d; offset and limit whole numbers"))
		return
	}
	switch q.Get("format") {
	case "", "json":
		es, err := h.svc.Audit(r.Context(), actor(r), f)
		respond(w, http.StatusOK, es, err)
	case "jsonl":
		if err := authorize(actor(r), false); err != nil {
			WriteError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Content-Disposition", `attachment; filename="bccguard-audit.jsonl"`)
		// Once streaming has begun the status is sent; a failure ends
		// the stream early and is in the log and the audit entry.
		_ = h.svc.ExportAudit(r.Context(), actor(r), w, f)
	default:
		WriteError(w, errorf(CodeBadRequest, "format must be json or jsonl"))
	}
}

// DecodeBody reads a JSON body into v, strictly: unknown fields are
// errors, so a misspelt option ("rewite") is not silently ignored. Only
// JSON is accepted, which also keeps a browser's cross-site form post out.
func DecodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return errorf(CodeBadRequest, "reading the body: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return errorf(CodeUnsupportedMedia, "the body must be JSON (Content-Type: application/json)")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(CodeBadRequest, "invalid JSON body: %v", err)
	}
	if dec.More() {
		return errorf(CodeBadRequest, "invalid JSON body: more than one value")
	}
	return nil
}

func respond(w http.ResponseWriter, code int, v any, err error) {
	if err != nil {
		WriteError(w, err)
		return
	}
	writeJSON(w, code, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorBody is the JSON form of every API error.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// WriteError answers with err as an API error. Internal errors say no
// more than that: their cause is in the relay's log.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: CodeInternal, Message: "internal error"}
	}
	if e.Code == CodeUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bccguard"`)
	}
	writeJSON(w, e.Code.HTTPStatus(), ErrorBody{Error: &Error{Code: e.Code, Message: e.Message}})
}

package queueadmin

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store"
)

// NewHandler returns the queue's JSON API over svc. Its routes are relative
// to where it is mounted (the admin listener at /api/v1, the control
// socket at /v1):
//
//	GET  /queue                  List: deliveries; query state (repeatable), id, limit
//	POST /queue/flush            Flush: deferred deliveries due now; query state, id
//	GET  /queue/{id}             Show: the message and each recipient's state
//	GET  /queue/{id}/raw         Cat: the stored original, as message/rfc822 (audited)
//	POST /queue/{id}/hold        Hold
//	POST /queue/{id}/release     Release
//	POST /queue/{id}/requeue     Requeue
//	POST /queue/{id}/delete      Delete; body DeleteOptions
//	POST /queue/delete           BulkDelete; body DeleteRequest
//
// Listing and showing need the viewer role, everything else the reviewer
// role. Errors are review's: {"error": {"code": ..., "message": ...}}. The
// caller authenticates (review.WithActor), as for the review API.
func NewHandler(svc *Service) http.Handler {
	h := &api{svc: svc}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /queue", h.list)
	mux.HandleFunc("POST /queue/flush", h.flush)
	mux.HandleFunc("POST /queue/delete", h.bulkDelete)
	mux.HandleFunc("GET /queue/{id}", h.show)
	mux.HandleFunc("GET /queue/{id}/raw", h.cat)
	mux.HandleFunc("POST /queue/{id}/hold", h.change(svc.Hold))
	mux.HandleFunc("POST /queue/{id}/release", h.change(svc.Release))
	mux.HandleFunc("POST /queue/{id}/requeue", h.change(svc.Requeue))
	mux.HandleFunc("POST /queue/{id}/delete", h.delete)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		review.WriteError(w, errorf(review.CodeNotFound, "no such API endpoint: %s %s", r.Method, r.URL.Path))
	})
	return review.Secure(mux)
}

type api struct{ svc *Service }

func actor(r *http.Request) review.Actor {
	a, _ := review.ActorFrom(r.Context())
	return a
}

// filterOf reads a List or Flush filter from the query.
func filterOf(q url.Values) (store.Filter, error) {
	f := store.Filter{MessageID: q.Get("id")}
	for _, s := range q["state"] {
		st := store.State(s)
		switch st {
		case store.StateQueued, store.StateDeferred, store.StateHeld, store.StateDelivered, store.StateBounced, store.StateExpired:
			f.States = append(f.States, st)
		default:
			return f, errorf(review.CodeBadRequest, "unknown state %q: queued, deferred, held, delivered, bounced or expired", s)
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return f, errorf(review.CodeBadRequest, "bad limit %q: a whole number", l)
		}
		f.Limit = n
	}
	return f, nil
}

// Query is the query string of a List or Flush filter.
func Query(f store.Filter) string {
	v := url.Values{}
	for _, s := range f.States {
		v.Add("state", string(s))
	}
	if f.MessageID != "" {
		v.Set("id", f.MessageID)
	}
	if f.Limit > 0 {
		v.Set("limit", strconv.Itoa(f.Limit))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

func (h *api) list(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r.URL.Query())
	if err != nil {
		review.WriteError(w, err)
		return
	}
	ds, err := h.svc.List(r.Context(), actor(r), f)
	respond(w, ds, err)
}

// FlushResult is the answer of POST /queue/flush.
type FlushResult struct {
	Flushed int `json:"flushed"`
}

func (h *api) flush(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r.URL.Query())
	if err != nil {
		review.WriteError(w, err)
		return
	}
	n, err := h.svc.Flush(r.Context(), actor(r), f)
	respond(w, FlushResult{Flushed: n}, err)
}

func (h *api) show(w http.ResponseWriter, r *http.Request) {
	m, err := h.svc.Show(r.Context(), actor(r), r.PathValue("id"))
	respond(w, m, err)
}

func (h *api) cat(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rc, err := h.svc.Cat(r.Context(), actor(r), id)
	if err != nil {
		review.WriteError(w, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": id + ".eml"}))
	_, _ = io.Copy(w, rc)
}

func (h *api) change(op func(ctx context.Context, a review.Actor, id string) (Result, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := review.DecodeBody(r, &struct{}{}); err != nil {
			review.WriteError(w, err)
			return
		}
		res, err := op(r.Context(), actor(r), r.PathValue("id"))
		respond(w, res, err)
	}
}

func (h *api) delete(w http.ResponseWriter, r *http.Request) {
	var o DeleteOptions
	if err := review.DecodeBody(r, &o); err != nil {
		review.WriteError(w, err)
		return
	}
	res, err := h.svc.Delete(r.Context(), actor(r), r.PathValue("id"), o)
	respond(w, res, err)
}

func (h *api) bulkDelete(w http.ResponseWriter, r *http.Request) {
	var req DeleteRequest
	if err := review.DecodeBody(r, &req); err != nil {
		review.WriteError(w, err)
		return
	}
	res, err := h.svc.BulkDelete(r.Context(), actor(r), req)
	respond(w, res, err)
}

func respond(w http.ResponseWriter, v any, err error) {
	if err != nil {
		review.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

package control

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/bccguard/bccguard/relay/queueadmin"
	"github.com/bccguard/bccguard/relay/store"
)

// The queue commands of the CLI (bccguard queue …), over queueadmin's API.

// List returns the queued deliveries matching f.
func (c *Client) List(ctx context.Context, f store.Filter) ([]store.Delivery, error) {
	var out []store.Delivery
	err := c.do(ctx, http.MethodGet, "/v1/queue"+queueadmin.Query(f), &out)
	return out, err
}

// Flush makes deferred deliveries matching f due now and returns how many.
func (c *Client) Flush(ctx context.Context, f store.Filter) (int, error) {
	var out queueadmin.FlushResult
	err := c.do(ctx, http.MethodPost, "/v1/queue/flush"+queueadmin.Query(f), &out)
	return out.Flushed, err
}

// QueueShow returns one queued message with its recipients' states.
func (c *Client) QueueShow(ctx context.Context, id string) (queueadmin.Message, error) {
	var m queueadmin.Message
	err := c.call(ctx, http.MethodGet, "/v1/queue/"+url.PathEscape(id), nil, &m)
	return m, err
}

// QueueCat writes the stored original of a queued message to w.
func (c *Client) QueueCat(ctx context.Context, id string, w io.Writer) error {
	return c.call(ctx, http.MethodGet, "/v1/queue/"+url.PathEscape(id)+"/raw", nil, w)
}

// QueueChange holds, releases or requeues a message (action is one of
// queueadmin's Action constants).
func (c *Client) QueueChange(ctx context.Context, action, id string) (queueadmin.Result, error) {
	var r queueadmin.Result
	err := c.call(ctx, http.MethodPost, "/v1/queue/"+url.PathEscape(id)+"/"+url.PathEscape(action), nil, &r)
	return r, err
}

// QueueDelete deletes the messages of req (or with DryRun lists them).
func (c *Client) QueueDelete(ctx context.Context, req queueadmin.DeleteRequest) (queueadmin.BulkResult, error) {
	var r queueadmin.BulkResult
	err := c.call(ctx, http.MethodPost, "/v1/queue/delete", req, &r)
	return r, err
}

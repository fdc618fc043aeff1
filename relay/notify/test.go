package notify

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/bccguard/bccguard/config"
)

// Mailer sends one message to the upstream at once, for `bccguard notify
// test` (the relay is not needed for it).
type Mailer func(ctx context.Context, to string, write func(io.Writer) error) error

// TestResult is what SendTest did on one channel.
type TestResult struct {
	Channel string        `json:"channel"`
	Type    string        `json:"type"`
	Took    time.Duration `json:"took_ns"`
	Error   string        `json:"error,omitempty"`
}

// SendTest sends a test notification to each channel of cfg (or the one
// named), at once and without the store: a webhook is posted as the
// Service would post it, an email is handed to mail. It reads the
// channels' secrets and CA files as the Service does.
func SendTest(ctx context.Context, cfg *config.Config, name string, mail Mailer) ([]TestResult, error) {
	var out []TestResult
	for _, ch := range cfg.Notify.Channels {
		if name != "" && ch.Name != name {
			continue
		}
		ev := &Event{ID: "test-" + time.Now().UTC().Format("20060102T150405Z"), Event: EventTest, At: time.Now().UTC(), Host: cfg.Hostname}
		ev.Text = summary(ev)
		r := TestResult{Channel: ch.Name, Type: string(ch.Type)}
		start := time.Now()
		var err error
		switch ch.Type {
		case config.ChannelWebhook:
			var w *webhook
			if w, err = newWebhook(ch); err == nil {
				err = w.send(ctx, ev, time.Now())
			}
		case config.ChannelEmail:
			err = mail(ctx, ch.To, func(wr io.Writer) error {
				return writeEventMail(wr, cfg.Hostname, ch.From, ch.To, ev, time.Now())
			})
		}
		r.Took = time.Since(start)
		if err != nil {
			r.Error = err.Error()
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		if name != "" {
			return nil, fmt.Errorf("no notify channel named %q in the configuration", name)
		}
		return nil, fmt.Errorf("the configuration has no notify channels")
	}
	return out, nil
}

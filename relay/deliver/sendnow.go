package deliver

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/upstream"
)

// SendNow hands one message, written by write, to the configured upstream
// at once, from the null sender, and returns the upstream's verdict. It is
// for checks made without a running relay (bccguard notify test); mail
// the relay accepts always goes through the queue.
func SendNow(ctx context.Context, cfg *config.Config, to string, write func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return err
	}
	up, err := newMTA(cfg.Upstream, cfg.Hostname)
	if err != nil {
		return err
	}
	conn, err := up.Dial(ctx)
	if err != nil {
		return fmt.Errorf("upstream %s: %w", cfg.Upstream.Address, err)
	}
	defer conn.Close()
	res, err := conn.Send(&upstream.Transaction{
		Size:  int64(buf.Len()),
		Rcpts: []upstream.Recipient{{Addr: to}},
		Body: func(w io.Writer) error {
			_, err := w.Write(buf.Bytes())
			return err
		},
	})
	if err != nil {
		return fmt.Errorf("upstream %s: %w", cfg.Upstream.Address, err)
	}
	if res[0] != nil {
		return fmt.Errorf("upstream %s refused %s: %w", cfg.Upstream.Address, to, res[0])
	}
	return nil
}

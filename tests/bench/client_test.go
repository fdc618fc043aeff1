package bench

import (
	"fmt"
	"time"

	"github.com/emersion/go-smtp"
)

// sendOne runs one transaction on an open session and returns how long the
// 250 after DATA took: from the end of the message (the last buffered
// bytes and the final dot) to the reply.
func sendOne(c *smtp.Client, to []string, msg []byte) (time.Duration, error) {
	if err := c.Mail("crm@brand.example", nil); err != nil {
		return 0, fmt.Errorf("MAIL: %w", err)
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return 0, fmt.Errorf("RCPT %s: %w", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return 0, fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return 0, fmt.Errorf("DATA content: %w", err)
	}
	start := time.Now()
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("end of DATA: %w", err)
	}
	return time.Since(start), nil
}

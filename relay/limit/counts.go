package limit

import (
	"context"
	"fmt"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// CountWindows are the windows of ClientCounts, in its order.
var CountWindows = [3]time.Duration{time.Minute, time.Hour, 24 * time.Hour}

// ClientCounts counts this message and its recipients for the client and
// returns what the client has sent over each of CountWindows, this
// message included: the policy's client.messages_last_hour and the like,
// which let a rule weigh a burst against what a message shows. The client
// is its AUTH user, or its IP address when it did not log in. Like the
// limits' counts, these are given back if the message is not accepted.
// On a nil *Tx (no limiter) the counts are zero.
func (tx *Tx) ClientCounts(ctx context.Context, recipients int) ([3]store.RateCount, error) {
	var out [3]store.RateCount
	if tx == nil {
		return out, nil
	}
	key := "n:" + tx.c.IP.String()
	if tx.c.User != "" {
		key = "u:" + tx.c.User
	}
	reqs := make([]store.RateRequest, len(CountWindows))
	for i, w := range CountWindows {
		reqs[i] = store.RateRequest{Scope: "client/" + key, Window: w, Messages: 1, Recipients: int64(recipients)}
	}
	at := tx.l.now()
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	res, err := tx.l.counter.TakeRate(ctx, at, reqs)
	if err != nil {
		return out, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	tx.taken = append(tx.taken, taken{at: at, reqs: reqs})
	copy(out[:], res.Counts)
	return out, nil
}

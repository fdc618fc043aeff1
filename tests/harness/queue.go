package harness

import (
	"encoding/json"
	"strings"
)

// QueueEntry is one delivery as `bccguard queue list --json` prints it.
// Fields the harness does not know are kept in Raw.
type QueueEntry struct {
	ID          string `json:"id"`
	MessageID   string `json:"message_id"`
	State       string `json:"state"`
	Attempts    int    `json:"attempts"`
	NextAttempt string `json:"next_attempt"`
	LastError   string `json:"last_error"`
	Recipients  []struct {
		Addr string `json:"addr"`
	} `json:"recipients"`
	Raw map[string]any `json:"-"`
}

// Queue runs `bccguard queue list --json --data-dir DIR` against the running
// relay and returns its deliveries. It fails the test if the command fails
// or prints something that is not JSON.
func (r *Relay) Queue() []QueueEntry {
	r.t.Helper()
	out := r.MustCLI("queue", "list", "--json", "--data-dir", r.dataDir)
	entries, err := ParseQueue(out)
	if err != nil {
		r.t.Fatalf("queue list --json: %v; output:\n%s", err, out)
	}
	return entries
}

// QueueFlush runs `bccguard queue flush --data-dir DIR`.
func (r *Relay) QueueFlush() string {
	r.t.Helper()
	return r.MustCLI("queue", "flush", "--data-dir", r.dataDir)
}

// ParseQueue reads the output of `bccguard queue list --json`, also of a
// relay the harness did not start (in a container). It accepts a JSON array
// of deliveries, an object holding one (for example {"deliveries": […]}), or
// one JSON object per line.
func ParseQueue(out string) ([]QueueEntry, error) {
	out = strings.TrimSpace(out)
	if out == "" || out == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if strings.HasPrefix(out, "[") {
		if err := json.Unmarshal([]byte(out), &items); err != nil {
			return nil, err
		}
	} else {
		dec := json.NewDecoder(strings.NewReader(out))
		var objs []map[string]json.RawMessage
		for dec.More() {
			var m map[string]json.RawMessage
			if err := dec.Decode(&m); err != nil {
				return nil, err
			}
			objs = append(objs, m)
		}
		if len(objs) == 1 {
			if _, isEntry := objs[0]["state"]; !isEntry {
				for _, v := range objs[0] {
					if s := strings.TrimSpace(string(v)); strings.HasPrefix(s, "[") {
						if err := json.Unmarshal(v, &items); err != nil {
							return nil, err
						}
						break
					}
				}
				objs = nil
			}
		}
		for _, o := range objs {
			b, _ := json.Marshal(o)
			items = append(items, b)
		}
	}
	var entries []QueueEntry
	for _, it := range items {
		var e QueueEntry
		if err := json.Unmarshal(it, &e); err != nil {
			return nil, err
		}
		json.Unmarshal(it, &e.Raw)
		entries = append(entries, e)
	}
	return entries, nil
}

// CountState counts the entries in state (e.g. "deferred").
func CountState(entries []QueueEntry, state string) int {
	n := 0
	for _, e := range entries {
		if e.State == state {
			n++
		}
	}
	return n
}

package embedded

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bccguard/bccguard/relay/store"
)

// The database layout. Every delivery of a message has the ID
// "<messageID>.<n>" (n from 1), so a message's deliveries are one prefix
// range of the deliveries bucket.
var (
	bucketMeta       = []byte("meta")       // schema version, ping
	bucketMessages   = []byte("messages")   // message ID -> msgRecord (JSON)
	bucketBodies     = []byte("bodies")     // message ID -> raw message, for inline bodies
	bucketFiles      = []byte("files")      // message ID -> "" when the body is spool/<ID>
	bucketDeliveries = []byte("deliveries") // delivery ID -> store.Delivery (JSON)
	// open counts a message's deliveries not yet final (uint32 big-endian)
	// apart from its record, which is written once: a final Complete then
	// rewrites 4 bytes, not an envelope of maybe thousands of recipients.
	// When a Complete brings it to zero, the message, its deliveries and
	// body are deleted. A message committed without deliveries has no
	// count and is kept (a held message until it is released or discarded).
	bucketOpen = []byte("open")
	// due indexes pending deliveries by (NextAttempt, ID) so Claim and
	// NextDue read the front of the queue without scanning it.
	bucketDue = []byte("due")
	// age indexes pending deliveries by (CreatedAt, ID) with their state
	// as value, for Stats.Oldest, the counters, and List in age order.
	bucketAge = []byte("age")
	// holds holds the review record of every quarantined message (message
	// ID -> store.Hold as JSON, with its own copy of the message record).
	// It is kept apart from the queue's records on purpose: a released
	// message is collected like any other once its deliveries are final,
	// and a discarded one loses its record and body at once, but the hold
	// (envelope, client, quarantine details, approvals, resolution) stays
	// for the review history. Holds are never deleted by the store.
	bucketHolds = []byte("holds")
	// holdIndex indexes holds by (ReceivedAt, ID) with what the list
	// filters and HoldStats test (state, rule, sender, client IP, user) as
	// value, so listing reads the index and decodes only the page it
	// returns.
	bucketHoldIndex = []byte("holdindex")
	// audit is the review audit log: entry ID (uint64 big-endian, from the
	// bucket's sequence) -> store.AuditEntry (JSON). Append-only.
	bucketAudit = []byte("audit")
	// held indexes deliveries an operator put on hold by (CreatedAt, ID):
	// they leave due and age, so no claim and no queue age sees them.
	bucketHeld = []byte("held")
	// ratecounts keeps the rate limit counts between runs (ratelimit.go).
	bucketRate = []byte("ratecounts")

	keyVersion = []byte("version")
	keyPing    = []byte("ping")
)

// schemaVersion is the layout's version. Buckets added later without
// changing existing ones (holds, holdindex, audit, held, ratecounts, the
// notification outbox's notices, noticekeys, noticedue) are created on
// Open and keep the version.
const schemaVersion = "1"

// Values of the age index.
const (
	ageQueued   = 'q'
	ageDeferred = 'd'
)

func initBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{
		bucketMeta, bucketMessages, bucketBodies, bucketFiles, bucketDeliveries, bucketOpen, bucketDue, bucketAge,
		bucketHolds, bucketHoldIndex, bucketAudit, bucketHeld, bucketRate,
		bucketNotices, bucketNoticeKeys, bucketNoticeDue,
	} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch v := meta.Get(keyVersion); {
	case v == nil:
		return meta.Put(keyVersion, []byte(schemaVersion))
	case string(v) != schemaVersion:
		return fmt.Errorf("queue.db has schema version %q, this bccguard knows %q", v, schemaVersion)
	}
	return nil
}

// msgRecord is a message as stored, with what the store needs to know
// about its deliveries and body.
type msgRecord struct {
	Msg store.Message `json:"msg"`
	// Spilled: the body is the file spool/<ID>, not in bucketBodies.
	Spilled bool `json:"spilled,omitempty"`
	// Deliveries is how many deliveries were created (the last index).
	Deliveries int `json:"deliveries"`
}

func getMsg(tx *bolt.Tx, id string) (*msgRecord, error) {
	v := tx.Bucket(bucketMessages).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("message %s: %w", id, store.ErrNotFound)
	}
	var r msgRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("message %s: corrupt record: %w", id, err)
	}
	return &r, nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

func getDelivery(tx *bolt.Tx, id string) (*store.Delivery, error) {
	v := tx.Bucket(bucketDeliveries).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
	}
	return decodeDelivery(id, v)
}

func decodeDelivery(id string, v []byte) (*store.Delivery, error) {
	var d store.Delivery
	if err := json.Unmarshal(v, &d); err != nil {
		return nil, fmt.Errorf("delivery %s: corrupt record: %w", id, err)
	}
	return &d, nil
}

func deliveryID(msgID string, n int) string { return msgID + "." + strconv.Itoa(n) }

// deliveryPrefix is the key prefix of all deliveries of a message.
func deliveryPrefix(msgID string) []byte { return []byte(msgID + ".") }

// timeKey is an index key: the time as big-endian unix nanoseconds (so
// keys sort by time; times before 1970 sort as 1970), then the ID.
func timeKey(t time.Time, id string) []byte {
	k := make([]byte, 8+len(id))
	n := t.UnixNano()
	if n < 0 || t.IsZero() {
		n = 0
	}
	binary.BigEndian.PutUint64(k, uint64(n))
	copy(k[8:], id)
	return k
}

func splitTimeKey(k []byte) (time.Time, string) {
	if len(k) < 8 {
		return time.Time{}, ""
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC(), string(k[8:])
}

// keyNanos is the time part of an index key, for comparisons.
func keyNanos(k []byte) int64 { return int64(binary.BigEndian.Uint64(k)) }

// prefixKeys returns the keys of b that start with prefix. Collected first
// because deleting under a bbolt cursor can skip keys.
func prefixKeys(b *bolt.Bucket, prefix []byte) [][]byte {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	return keys
}

// lessDelivery orders deliveries oldest first: by creation, then message,
// then index (numerically, so ".10" follows ".9").
func lessDelivery(a, b *store.Delivery) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	if c := strings.Compare(a.MessageID, b.MessageID); c != 0 {
		return c
	}
	ai, _ := strconv.Atoi(a.ID[strings.LastIndexByte(a.ID, '.')+1:])
	bi, _ := strconv.Atoi(b.ID[strings.LastIndexByte(b.ID, '.')+1:])
	if c := cmp.Compare(ai, bi); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

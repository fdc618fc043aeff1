package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/spill"
)

type spoolState int

const (
	spoolOpen spoolState = iota
	spoolCommitted
	spoolDone // aborted, or failed and cleaned up
)

// spool is a store.Spool, used by one session at a time.
//
// The body is not written to PostgreSQL while it arrives: that would keep
// a connection and an open transaction for the whole DATA phase of every
// session (minutes, for a large message from a slow client), capping
// concurrent sessions at the pool size and holding back vacuum. Small
// bodies stay in memory (at most InlineLimit per session) and go into the
// one round trip of the commit; larger ones stream to a temporary file,
// unlinked as soon as it is created, and are copied into the database at
// Commit (COPY, chunk by chunk, at the network's speed). Either way memory
// does not grow with the message.
type spool struct {
	s     *Store
	id    string
	body  *spill.Body // in memory, or in an unlinked temporary file
	err   error       // first write error; the spool can then only be aborted
	state spoolState
}

// NewSpool starts a message. Its ID is known up front for the Received:
// header; nothing is stored until Commit.
func (s *Store) NewSpool(ctx context.Context) (store.Spool, string, error) {
	if err := s.enter(ctx); err != nil {
		return nil, "", err
	}
	defer s.leave()
	id := newMessageID()
	sp := &spool{s: s, id: id}
	sp.body = spill.New(s.inlineLimit, sp.createFile)
	return sp, id, nil
}

// Write appends p to the message.
func (sp *spool) Write(p []byte) (int, error) {
	switch {
	case sp.state != spoolOpen:
		return 0, errors.New("postgres: write to a finished spool")
	case sp.err != nil:
		return 0, sp.err
	}
	n, err := sp.body.Write(p)
	if err != nil {
		sp.err = pgErr("write spool file", err)
		return n, sp.err
	}
	return n, nil
}

// createFile opens the temporary file a body moves to once it outgrows
// InlineLimit.
func (sp *spool) createFile() (*os.File, error) {
	f, err := os.CreateTemp(sp.s.tempDir, "bccguard-spool-*")
	if err != nil {
		return nil, err
	}
	// Removed at once: the open file is all we need, and a crash leaves
	// nothing behind. (Where removing an open file fails, discard does.)
	_ = os.Remove(f.Name())
	return f, nil
}

// Abort discards an uncommitted spool; after Commit it does nothing.
func (sp *spool) Abort() error {
	if sp.state != spoolOpen {
		return nil
	}
	sp.state = spoolDone
	sp.discard()
	return nil
}

func (sp *spool) discard() {
	if f := sp.body.Drop(); f != nil {
		_ = os.Remove(f.Name())
	}
}

// Commit stores the message record, its body and its deliveries (or its
// hold) in one transaction and returns once PostgreSQL committed it. It is
// done once: whether it succeeds or fails, the spool is finished.
func (sp *spool) Commit(ctx context.Context, msg store.Message, deliveries store.Plan, notices ...store.NewNotification) (string, error) {
	switch {
	case sp.state == spoolCommitted:
		return "", errors.New("postgres: spool already committed")
	case sp.state != spoolOpen:
		return "", errors.New("postgres: spool is finished (aborted or failed)")
	case sp.err != nil:
		sp.state = spoolDone
		sp.discard()
		return "", sp.err
	}
	id, err := sp.commit(ctx, msg, deliveries, notices)
	if err != nil {
		sp.state = spoolDone
	} else {
		sp.state = spoolCommitted
	}
	sp.discard()
	return id, err
}

// The statements of a commit.
const (
	sqlInsertMessage = `INSERT INTO messages (id, received_at, size, chunks, deliveries, record)
		VALUES ($1, $2, $3, $4, $5, $6)`
	sqlInsertChunk = `INSERT INTO message_chunks (message_id, seq, data) VALUES ($1, $2, $3)`
	// The deliveries come as one JSON array of store.NewDelivery, numbered
	// from 1 in their order: one statement whatever their number.
	sqlInsertDeliveries = `INSERT INTO deliveries (message_id, seq, recipients, rewrite, state, created_at, next_attempt)
		SELECT $1, d.ord, d.value -> 'recipients', d.value ->> 'rewrite', 'queued', $2, $2
		FROM json_array_elements($3::json) WITH ORDINALITY AS d (value, ord)`
	sqlInsertHold = `INSERT INTO holds (id, received_at, state, rule, sender, client_ip, client_user, message)
		VALUES ($1, $2, 'held', $3, $4, $5, $6, $7)`
)

func (sp *spool) commit(ctx context.Context, msg store.Message, deliveries store.Plan, notices []store.NewNotification) (string, error) {
	s := sp.s
	if err := s.enter(ctx); err != nil {
		return "", err
	}
	defer s.leave()
	if msg.ID != "" && msg.ID != sp.id {
		return "", fmt.Errorf("postgres: commit: message ID %q is not the spool's %q", msg.ID, sp.id)
	}
	if err := deliveries.Validate(); err != nil {
		return "", fmt.Errorf("postgres: commit: %w", err)
	}
	encNotices, err := encodeNotices("commit", notices)
	if err != nil {
		return "", err
	}
	if msg.Quarantine != nil && len(deliveries) > 0 {
		return "", errors.New("postgres: commit: a quarantined message cannot have deliveries (they are created by Release)")
	}

	now := dbTime(time.Now())
	msg.ID = sp.id
	msg.Size = sp.body.Size() // always the truth: it is what Open will return
	if msg.ReceivedAt.IsZero() {
		msg.ReceivedAt = now
	}
	msg.ReceivedAt = dbTime(msg.ReceivedAt)
	record, err := json.Marshal(&msg)
	if err != nil {
		return "", fmt.Errorf("postgres: encode message: %w", err)
	}
	chunks := int((sp.body.Size() + chunkSize - 1) / chunkSize)

	// Everything after the message row, in one batch.
	rest := &pgx.Batch{}
	if len(deliveries) > 0 {
		ds, err := json.Marshal(deliveries)
		if err != nil {
			return "", fmt.Errorf("postgres: encode deliveries: %w", err)
		}
		rest.Queue(sqlInsertDeliveries, sp.id, now, ds)
	}
	if q := msg.Quarantine; q != nil {
		rest.Queue(sqlInsertHold, sp.id, msg.ReceivedAt, text(q.Rule), text(lower(msg.Envelope.Sender)),
			text(msg.Client.IP), text(msg.Client.User), record)
	}
	if encNotices != nil {
		rest.Queue(sqlInsertNotices, now, encNotices)
	}

	if !sp.body.Spilled() {
		// One round trip: a batch without BEGIN runs as one implicit
		// transaction, committed (and flushed) at its end.
		b := &pgx.Batch{}
		b.Queue(sqlInsertMessage, sp.id, msg.ReceivedAt, msg.Size, chunks, len(deliveries), record)
		if inline := sp.body.Inline(); len(inline) > 0 {
			b.Queue(sqlInsertChunk, sp.id, 0, inline)
		}
		b.QueuedQueries = append(b.QueuedQueries, rest.QueuedQueries...)
		err = s.pool.SendBatch(ctx, b).Close()
	} else {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, sqlInsertMessage, sp.id, msg.ReceivedAt, msg.Size, chunks, len(deliveries), record); err != nil {
				return err
			}
			if err := sp.copyBody(ctx, tx, chunks); err != nil {
				return err
			}
			if rest.Len() == 0 {
				return nil
			}
			return tx.SendBatch(ctx, rest).Close()
		})
	}
	if isCode(err, codeUniqueViolated) {
		return "", fmt.Errorf("postgres: commit: message ID %s already stored: %w", sp.id, err)
	}
	if err != nil {
		return "", pgErr("commit "+sp.id, err)
	}
	return sp.id, nil
}

// copyBody streams the spooled file into message_chunks with COPY.
func (sp *spool) copyBody(ctx context.Context, tx pgx.Tx, chunks int) error {
	f, err := sp.body.File()
	if err != nil {
		return fmt.Errorf("write spool file: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind spool file: %w", err)
	}
	buf := chunkBufs.Get().(*[chunkSize]byte)
	defer chunkBufs.Put(buf)
	src := &chunkSource{id: sp.id, r: f, left: sp.body.Size(), buf: buf[:]}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"message_chunks"}, []string{"message_id", "seq", "data"}, src)
	if err != nil {
		return err
	}
	if n != int64(chunks) {
		return fmt.Errorf("copied %d chunks of the body, want %d", n, chunks)
	}
	return nil
}

// chunkSource feeds COPY one chunk at a time from the spool file, reusing
// one buffer: pgx encodes a row before it asks for the next.
type chunkSource struct {
	id   string
	r    io.Reader
	left int64
	seq  int
	buf  []byte
	cur  []byte
	err  error
}

func (c *chunkSource) Next() bool {
	if c.left <= 0 || c.err != nil {
		return false
	}
	n := int(min(int64(len(c.buf)), c.left))
	if _, err := io.ReadFull(c.r, c.buf[:n]); err != nil {
		c.err = fmt.Errorf("read spool file: %w", err)
		return false
	}
	c.cur = c.buf[:n]
	c.left -= int64(n)
	c.seq++
	return true
}

func (c *chunkSource) Values() ([]any, error) { return []any{c.id, c.seq - 1, c.cur}, nil }
func (c *chunkSource) Err() error             { return c.err }

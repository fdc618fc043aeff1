package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/bccguard/bccguard/relay/store"
)

// chunkSize is the size of a body row.
//
// Why rows of bytea and not large objects, for messages of up to 50 MiB
// (and more):
//
//   - Both end up in 2 KiB TOAST or pg_largeobject pages, so the storage
//     cost is the same; neither holds a message in memory on the server.
//   - Chunk rows belong to their message: ON DELETE CASCADE removes them
//     in the transaction that collects or discards it. A large object is a
//     separate thing that must be lo_unlink'ed by hand; a missed unlink
//     (a crash, a bug) leaks it until someone runs vacuumlo.
//   - Chunk rows stream in with COPY inside the commit transaction and
//     out with one short query per chunk, each on any pooled connection.
//     Reading a large object needs a transaction open for the whole read,
//     that is a connection held while a delivery trickles to a slow
//     upstream.
//   - Large objects need their own privileges (lo_compat_privileges, GRANT
//     on each object), and some managed PostgreSQL services and logical
//     replication do not handle them; rows are ordinary data everywhere.
//
// 256 KiB per row keeps the per-row and per-query overhead small (a 50 MiB
// message is 200 rows) while a reader or writer holds one chunk at a time.
// BenchmarkLargeMessage measures it: see README.md for the figures.
const chunkSize = 256 << 10

// chunkBufs recycles the chunk-sized buffers of readers and of COPY.
var chunkBufs = sync.Pool{New: func() any { return new([chunkSize]byte) }}

// Open returns the stored raw message. The first chunk comes with the
// lookup; the others are fetched one query each as the reader reaches
// them, so no connection is held between reads and memory stays at one
// chunk whatever the size.
func (s *Store) Open(ctx context.Context, messageID string) (io.ReadCloser, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	r := &bodyReader{s: s, ctx: ctx, id: messageID}
	rows, err := s.pool.Query(ctx, `
		SELECT m.chunks, c.data FROM messages m
		LEFT JOIN message_chunks c ON c.message_id = m.id AND c.seq = 0
		WHERE m.id = $1`, messageID)
	if err != nil {
		return nil, pgErr("open", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, pgErr("open", err)
		}
		return nil, fmt.Errorf("postgres: open: message %s: %w", messageID, store.ErrNotFound)
	}
	var data pgtype.DriverBytes
	if err := rows.Scan(&r.chunks, &data); err != nil {
		return nil, pgErr("open", err)
	}
	if r.chunks > 0 {
		if data == nil {
			return nil, fmt.Errorf("postgres: open: message %s: first chunk missing", messageID)
		}
		if r.chunks > 1 { // a large message: a recycled buffer for all its chunks
			r.pooled = chunkBufs.Get().(*[chunkSize]byte)
			r.buf = append(r.pooled[:0], data...)
		} else {
			r.buf = bytes.Clone(data)
		}
		r.next = 1
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, pgErr("open", err)
	}
	return r, nil
}

// bodyReader reads a message chunk by chunk.
type bodyReader struct {
	s      *Store
	ctx    context.Context
	id     string
	chunks int    // how many there are
	next   int    // the next chunk to fetch
	buf    []byte // the current chunk
	pooled *[chunkSize]byte
	off    int // read position in buf
	err    error
}

func (r *bodyReader) Read(p []byte) (int, error) {
	for r.off == len(r.buf) {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

// WriteTo hands whole chunks to w, saving io.Copy a copy.
func (r *bodyReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if r.off < len(r.buf) {
			n, err := w.Write(r.buf[r.off:])
			total += int64(n)
			r.off += n
			if err != nil {
				return total, err
			}
		}
		if err := r.fill(); err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
	}
}

// fill fetches the next chunk into buf (reusing it), or reports io.EOF.
func (r *bodyReader) fill() error {
	if r.err != nil {
		return r.err
	}
	if r.next >= r.chunks {
		r.buf, r.off = r.buf[:0], 0
		return io.EOF
	}
	r.err = r.fetch()
	return r.err
}

func (r *bodyReader) fetch() error {
	if err := r.s.enter(r.ctx); err != nil {
		return err
	}
	defer r.s.leave()
	rows, err := r.s.pool.Query(r.ctx, `SELECT data FROM message_chunks WHERE message_id = $1 AND seq = $2`, r.id, r.next)
	if err != nil {
		return pgErr("read body", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return pgErr("read body", err)
		}
		// The message was collected or discarded while being read.
		return fmt.Errorf("postgres: read body: message %s, chunk %d: %w", r.id, r.next, store.ErrNotFound)
	}
	var data pgtype.DriverBytes // the driver's buffer, valid until Next: copied at once
	if err := rows.Scan(&data); err != nil {
		return pgErr("read body", err)
	}
	r.buf = append(r.buf[:0], data...)
	r.off = 0
	r.next++
	rows.Close()
	return pgErr("read body", rows.Err())
}

func (r *bodyReader) Close() error {
	r.buf = nil
	if r.pooled != nil {
		chunkBufs.Put(r.pooled)
		r.pooled = nil
	}
	if r.err == nil {
		r.err = errors.New("postgres: read of a closed message")
	}
	return nil
}

// Message returns a message record.
func (s *Store) Message(ctx context.Context, messageID string) (store.Message, error) {
	if err := s.enter(ctx); err != nil {
		return store.Message{}, err
	}
	defer s.leave()
	var (
		record []byte
		size   int64
	)
	err := s.pool.QueryRow(ctx, `SELECT record, size FROM messages WHERE id = $1`, messageID).Scan(&record, &size)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Message{}, fmt.Errorf("postgres: message %s: %w", messageID, store.ErrNotFound)
	}
	if err != nil {
		return store.Message{}, pgErr("message", err)
	}
	return decodeMessage(messageID, record, size)
}

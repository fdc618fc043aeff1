package embedded

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"

	"github.com/bccguard/bccguard/relay/store"
)

// committer is the group commit: every write of the store is a function
// run in a bbolt read-write transaction, and one goroutine runs, in a
// single transaction (one fsync), every function that arrived while the
// previous transaction was committing.
//
// Why not bbolt's DB.Batch: it starts a batch on a timer (MaxBatchDelay,
// 10ms by default), so a lone commit always waits for the timer, and with N
// concurrent sessions throughput is capped near N per delay (measured with
// BenchmarkCommitParallel, 20 sessions: about 1,600 msgs/s with
// DB.Batch against 7,000-8,000 with this committer). Here a commit
// that finds the committer idle starts at once; under load, batches grow
// by themselves to the number of writers waiting. The failure handling is
// bbolt's: if one function fails, the transaction is rolled back, that
// function is re-run alone by its caller and the rest are retried together.
// Functions may therefore run more than once and must be idempotent: they
// only touch the transaction, and make in-memory changes in tx.OnCommit
// handlers, which run only for the transaction that commits.
type committer struct {
	db  *bolt.DB
	max int // most functions in one transaction

	mu     sync.Mutex
	cond   sync.Cond
	queue  []*call
	spare  []*call
	closed bool
	done   chan struct{}

	// commits counts committed write transactions (each costs bbolt two
	// fdatasyncs: pages, then meta); benchmarks divide it by messages.
	commits atomic.Uint64
}

type call struct {
	fn  func(*bolt.Tx) error
	err chan error
}

// errSolo tells a caller that its function failed inside a batch and must
// be re-run alone, so that its error is its own and not an effect of the
// functions it was batched with.
var errSolo = errors.New("embedded: re-run alone")

// commitError marks a failure to commit the transaction itself (an I/O
// error), as opposed to an error returned by a function. After it the
// transaction is most likely not durable, but after a failed fsync not
// even that is certain (see Spool.Commit).
type commitError struct{ err error }

func (e *commitError) Error() string { return fmt.Sprintf("commit: %v", e.err) }
func (e *commitError) Unwrap() error { return e.err }

func newCommitter(db *bolt.DB) *committer {
	c := &committer{db: db, max: 1000, done: make(chan struct{})}
	c.cond.L = &c.mu
	go c.loop()
	return c
}

// do runs fn in a committed transaction, usually shared with others, and
// returns once that transaction is durable or has failed.
func (c *committer) do(fn func(*bolt.Tx) error) error {
	cl := &call{fn: fn, err: make(chan error, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return store.ErrClosed
	}
	c.queue = append(c.queue, cl)
	c.cond.Signal()
	c.mu.Unlock()
	err := <-cl.err
	if err == errSolo {
		err = c.solo(fn)
	}
	return err
}

func (c *committer) solo(fn func(*bolt.Tx) error) error {
	var fnErr error
	err := c.db.Update(func(tx *bolt.Tx) error {
		fnErr = safeCall(fn, tx)
		return fnErr
	})
	switch {
	case err == nil:
		c.commits.Add(1)
	case fnErr == nil:
		err = &commitError{err}
	}
	return err
}

// close stops the committer once the queue is empty. The store calls it
// when no operation is in flight, so nothing is waiting.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.cond.Signal()
	c.mu.Unlock()
	<-c.done
}

func (c *committer) loop() {
	defer close(c.done)
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && !c.closed {
			c.cond.Wait()
		}
		if len(c.queue) == 0 {
			c.mu.Unlock()
			return
		}
		var batch []*call
		if len(c.queue) <= c.max {
			// Swap buffers so the queue's array is reused.
			batch, c.queue, c.spare = c.queue, c.spare[:0], nil
		} else {
			batch = append([]*call(nil), c.queue[:c.max]...)
			c.queue = append(c.queue[:0], c.queue[c.max:]...)
		}
		c.mu.Unlock()
		c.run(batch)
		clear(batch)
		c.mu.Lock()
		if c.spare == nil && cap(batch) <= 4*c.max {
			c.spare = batch[:0]
		}
		c.mu.Unlock()
	}
}

func (c *committer) run(batch []*call) {
	for len(batch) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, cl := range batch {
				if err := safeCall(cl.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			batch[failed].err <- errSolo
			batch[failed] = batch[len(batch)-1]
			batch = batch[:len(batch)-1]
			continue
		}
		if err == nil {
			c.commits.Add(1)
		} else {
			err = &commitError{err}
		}
		for _, cl := range batch {
			cl.err <- err
		}
		return
	}
}

// safeCall turns a panic in fn into an error: one bad write must not take
// the whole batch, or the process, down.
func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("embedded: panic in transaction: %v", p)
		}
	}()
	return fn(tx)
}

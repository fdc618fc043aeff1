// Package embedded is bccguard's default store: one data folder, no other
// service. Records live in a bbolt database (dir/queue.db); message bodies
// live inline in that database when small, or as files in dir/spool/ when
// large.
//
// Durability rests on two rules:
//
//   - A message is committed when, and only when, its record is in a
//     committed bbolt transaction. A spilled body file is fdatasync'd and its
//     directory entry fsync'd before that transaction starts, so a committed
//     record always has its body; a file without a record is an orphan of a
//     crash or an abort and is removed on Open.
//   - Writes go through one group committer (batch.go): every write that
//     arrives while a transaction is being committed joins the next one, so
//     concurrent sessions share one fsync instead of paying one each.
//
// Quarantined messages (quarantine.go) are ordinary messages without
// deliveries plus a separate hold record, which outlives the message's own
// record and body for the review history; the audit log is one more
// append-only bucket. Both go through the same group committer.
//
// Leases are kept in memory: one process owns the folder (an exclusive lock
// on queue.db), and after a restart every lease is gone, so work in flight
// when the process died is claimable again (at-least-once delivery).
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/bccguard/bccguard/relay/store"
)

// DefaultInlineLimit is the body size from which a body is spilled to its own
// file instead of being stored in the database.
const DefaultInlineLimit = 128 << 10

// DefaultLockTimeout is how long Open waits for another process to release
// the data folder.
const DefaultLockTimeout = time.Second

// Options tune an embedded store. The zero value is ready to use.
type Options struct {
	// Logger receives recovery and cleanup notices; nil discards them.
	Logger *slog.Logger
	// InlineLimit: bodies smaller than this many bytes are held in memory
	// while spooling and stored in the database, so many of them share one
	// fsync; larger bodies stream to a file. 0 means DefaultInlineLimit; a
	// negative value spills every body to a file.
	InlineLimit int
	// LockTimeout is how long Open waits for the folder's lock; 0 means
	// DefaultLockTimeout.
	LockTimeout time.Duration
	// MinFree is the free space (bytes) kept on the data folder's
	// filesystem: below it new messages are refused with ErrNoSpace (see
	// checkSpace). 0 means DefaultMinFree; negative turns the check off.
	MinFree int64
}

// Store is the embedded store.Store. Create it with Open.
type Store struct {
	dir         string
	spoolDir    string
	spoolDirF   *os.File // kept open to fsync the directory after creating body files
	db          *bolt.DB
	log         *slog.Logger
	inlineLimit int
	minFree     int64
	ids         idGen
	batch       *committer

	// life is held shared by every operation and exclusively by Close, so
	// Close waits for operations in flight and later ones see ErrClosed.
	life   sync.RWMutex
	closed bool

	// mu guards leases. Claim holds it while reading the queue so that a
	// lease released by a commit is never paired with a snapshot older
	// than that commit (see Claim).
	mu     sync.Mutex
	leases map[string]*heldLease
	// claimMsgs caches decoded message records for Claim (also under mu):
	// an exploded message's deliveries are claimed a few at a time, and
	// decoding its record (the whole envelope) for each claim was a
	// quarter of the CPU in `make bench`. See cachedMsg.
	claimMsgs map[string]*cachedMsg

	// notices holds the leases of the notification outbox (notify.go).
	notices noticeState

	// Counters for Stats, rebuilt on Open and moved by commit handlers.
	pending  atomic.Int64
	deferred atomic.Int64
	held     atomic.Int64

	// rate holds the rate limit counts (ratelimit.go).
	rate *rateCounts
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the data folder dir and takes its lock.
// It removes what a crash or an abort left behind: body files that no
// committed record points to.
func Open(dir string, opts Options) (*Store, error) {
	s := &Store{
		dir:         dir,
		spoolDir:    filepath.Join(dir, "spool"),
		log:         opts.Logger,
		inlineLimit: opts.InlineLimit,
		minFree:     opts.MinFree,
		leases:      make(map[string]*heldLease),
		claimMsgs:   make(map[string]*cachedMsg),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.minFree == 0 {
		s.minFree = DefaultMinFree
	}
	if s.inlineLimit == 0 {
		s.inlineLimit = DefaultInlineLimit
	}
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	if err := os.MkdirAll(s.spoolDir, 0o700); err != nil {
		return nil, ioErr("create data dir", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "queue.db"), 0o600, &bolt.Options{
		Timeout: timeout,
		// A synced freelist keeps Open and the rollback of a failed
		// commit (disk full) cheap; the hashmap type keeps allocation
		// fast when many body pages are freed.
		FreelistType: bolt.FreelistMapType,
		// Readers never wait for a remap until the file outgrows this;
		// it is address space, not memory.
		InitialMmapSize: 256 << 20,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("embedded: data dir %s is in use by another bccguard: %w", dir, err)
	}
	if err != nil {
		return nil, ioErr("open "+filepath.Join(dir, "queue.db"), err)
	}
	s.db = db
	fail := func(err error) (*Store, error) {
		if s.spoolDirF != nil {
			s.spoolDirF.Close()
		}
		db.Close()
		return nil, err
	}
	if err := db.Update(initBuckets); err != nil {
		return fail(ioErr("init database", err))
	}
	// A brand-new queue.db and spool/ must survive a crash as entries too.
	if err := syncDir(dir); err != nil {
		return fail(ioErr("sync data dir", err))
	}
	if s.spoolDirF, err = os.Open(s.spoolDir); err != nil {
		return fail(ioErr("open spool dir", err))
	}
	if err := s.recoverState(); err != nil {
		return fail(err)
	}
	s.batch = newCommitter(db)
	if err := s.openRate(); err != nil {
		s.batch.close()
		return fail(err)
	}
	return s, nil
}

// enter marks the start of an operation; leave must follow when it is nil.
func (s *Store) enter() error {
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		return store.ErrClosed
	}
	return nil
}

func (s *Store) leave() { s.life.RUnlock() }

// Close waits for operations in flight, then releases the folder. Spools
// not yet committed are lost (their files are removed on the next Open).
// Closing twice is harmless.
func (s *Store) Close() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.closeRate(); err != nil {
		s.log.Warn("rate limit counts not saved at close", "err", err)
	}
	s.batch.close()
	errDir := s.spoolDirF.Close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("embedded: close: %w", err)
	}
	if errDir != nil {
		return fmt.Errorf("embedded: close: %w", errDir)
	}
	return nil
}

// Ping checks that the store can still commit (a tiny transaction through
// the group committer) and that the spool folder takes a new file, so a full
// disk shows as not ready.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now().UTC().AppendFormat(nil, time.RFC3339Nano)
	err := s.batch.do(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyPing, now)
	})
	if err != nil {
		return ioErr("ping", err)
	}
	name := filepath.Join(s.spoolDir, ".ping")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return ioErr("ping spool", err)
	}
	_, err = f.Write([]byte{'\n'})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	os.Remove(name)
	return ioErr("ping spool", err)
}

// Stats summarises pending deliveries. The counts come from counters kept
// by the commits; the oldest from the first key of the age index.
func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	if err := s.enter(); err != nil {
		return store.Stats{}, err
	}
	defer s.leave()
	st := store.Stats{Pending: int(s.pending.Load()), Deferred: int(s.deferred.Load()), Held: int(s.held.Load())}
	err := s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketAge).Cursor().First(); k != nil {
			st.Oldest, _ = splitTimeKey(k)
		}
		return nil
	})
	if err != nil {
		return store.Stats{}, fmt.Errorf("embedded: stats: %w", err)
	}
	return st, nil
}

package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bccguard/bccguard/relay/store"
)

// Rate limit counts live in memory, where a check costs a map lookup under
// a mutex: one process owns the folder, so nothing else needs to see
// them. They are written to queue.db (the ratecounts bucket) every
// rateSaveEvery and when the store closes, and read back at Open, so a
// restart does not hand a sender a fresh daily allowance; a crash loses
// at most the counts of the last rateSaveEvery. Writing each count as it
// changes would put a commit (an fsync) in front of every MAIL FROM.

// rateSaveEvery is how often changed counts are written to queue.db.
const rateSaveEvery = 10 * time.Second

// rateSweepEvery is how often scopes whose window has passed are dropped.
const rateSweepEvery = time.Minute

var _ store.RateCounter = (*Store)(nil)

type rateKey struct {
	scope  string
	window time.Duration
}

// rateSlot is one slot's count.
type rateSlot struct {
	n    int64 // store.RateSlot
	m, r int64
}

// rateScope is a scope's non-empty slots, oldest first.
type rateScope struct {
	slots []rateSlot
	dirty bool // in rateCounts.dirty
}

// trim drops the slots that have left the window ending in slot cur.
func (rs *rateScope) trim(cur int64) {
	i := 0
	for i < len(rs.slots) && rs.slots[i].n < cur-store.RateSlots {
		i++
	}
	if i > 0 {
		rs.slots = slices.Delete(rs.slots, 0, i)
	}
}

func (rs *rateScope) sum() store.RateCount {
	var c store.RateCount
	for _, s := range rs.slots {
		c.Messages += s.m
		c.Recipients += s.r
	}
	return c
}

// at returns slot n, adding it in order if it is not there.
func (rs *rateScope) at(n int64) *rateSlot {
	i, found := slices.BinarySearchFunc(rs.slots, n, func(s rateSlot, n int64) int {
		switch {
		case s.n < n:
			return -1
		case s.n > n:
			return 1
		}
		return 0
	})
	if !found {
		rs.slots = slices.Insert(rs.slots, i, rateSlot{n: n})
	}
	return &rs.slots[i]
}

// rateCounts is the embedded store's store.RateCounter state.
type rateCounts struct {
	mu     sync.Mutex
	scopes map[rateKey]*rateScope
	// dirty lists the scopes changed since the last save, each once
	// (rateScope.dirty); a scope no longer in scopes is deleted.
	dirty     []rateKey
	lastSweep time.Time

	stop chan struct{}
	done chan struct{}
}

// openRate loads the saved counts and starts saving changes.
func (s *Store) openRate() error {
	rc := &rateCounts{
		scopes: map[rateKey]*rateScope{},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	now := time.Now()
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRate).ForEach(func(k, v []byte) error {
			key, rs, err := decodeRateScope(k, v)
			if err != nil {
				s.log.Warn("rate limit counts: skipping a corrupt entry", "err", err)
				return nil
			}
			rs.trim(store.RateSlot(now, key.window))
			if len(rs.slots) == 0 {
				rc.dirty = append(rc.dirty, key) // gone: deleted at the next save
				return nil
			}
			rc.scopes[key] = rs
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("embedded: load rate counts: %w", err)
	}
	s.rate = rc
	go s.saveRateLoop()
	return nil
}

func (s *Store) saveRateLoop() {
	defer close(s.rate.done)
	t := time.NewTicker(rateSaveEvery)
	defer t.Stop()
	for {
		select {
		case <-s.rate.stop:
			return
		case <-t.C:
			if err := s.saveRate(); err != nil && !errors.Is(err, store.ErrClosed) {
				s.log.Warn("rate limit counts not saved; retrying", "err", err)
			}
		}
	}
}

// closeRate stops the saver and saves what changed; Close calls it before
// the committer stops.
func (s *Store) closeRate() error {
	close(s.rate.stop)
	<-s.rate.done
	return s.saveRate()
}

// saveRate writes the scopes changed since the last save.
func (s *Store) saveRate() error {
	rc := s.rate
	rc.mu.Lock()
	if len(rc.dirty) == 0 {
		rc.mu.Unlock()
		return nil
	}
	type entry struct{ k, v []byte }
	entries := make([]entry, 0, len(rc.dirty))
	for _, key := range rc.dirty {
		e := entry{k: rateDBKey(key)}
		if rs := rc.scopes[key]; rs != nil {
			e.v = encodeRateScope(rs)
			rs.dirty = false
		}
		entries = append(entries, e)
	}
	saved := rc.dirty
	rc.dirty = nil
	rc.mu.Unlock()
	err := s.batch.do(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRate)
		for _, e := range entries {
			var err error
			if e.v == nil {
				err = b.Delete(e.k)
			} else {
				err = b.Put(e.k, e.v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		rc.mu.Lock()
		for _, key := range saved {
			rc.markDirty(key, rc.scopes[key])
		}
		rc.mu.Unlock()
		return ioErr("save rate counts", err)
	}
	return nil
}

// TakeRate checks and adds reqs at now, all or nothing.
func (s *Store) TakeRate(ctx context.Context, now time.Time, reqs []store.RateRequest) (store.RateResult, error) {
	if err := s.enter(); err != nil {
		return store.RateResult{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return store.RateResult{}, err
	}
	res := store.RateResult{Taken: true, Counts: make([]store.RateCount, len(reqs)), Over: make([]bool, len(reqs))}
	rc := s.rate
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.sweep(now)
	var small [16]*rateScope // a transaction's limits fit: no allocation
	scopes := small[:0]
	if len(reqs) > len(small) {
		scopes = make([]*rateScope, 0, len(reqs))
	}
	for _, q := range reqs {
		key := rateKey{q.Scope, q.Window}
		rs := rc.scopes[key]
		if rs == nil { // left empty if nothing is added: the sweep drops it
			rs = &rateScope{}
			rc.scopes[key] = rs
		}
		rs.trim(store.RateSlot(now, q.Window))
		scopes = append(scopes, rs)
		i := len(scopes) - 1
		c := rs.sum()
		res.Counts[i] = c
		if q.MaxMessages > 0 && c.Messages+q.Messages > q.MaxMessages ||
			q.MaxRecipients > 0 && c.Recipients+q.Recipients > q.MaxRecipients {
			res.Over[i], res.Taken = true, false
		}
	}
	if !res.Taken {
		return res, nil
	}
	for i, q := range reqs {
		if q.Messages == 0 && q.Recipients == 0 {
			continue
		}
		sl := scopes[i].at(store.RateSlot(now, q.Window))
		sl.m += q.Messages
		sl.r += q.Recipients
		rc.markDirty(rateKey{q.Scope, q.Window}, scopes[i])
	}
	for i := range reqs {
		res.Counts[i] = scopes[i].sum()
	}
	return res, nil
}

// GiveRate takes back what a TakeRate at at added.
func (s *Store) GiveRate(ctx context.Context, at time.Time, reqs []store.RateRequest) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	rc := s.rate
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, q := range reqs {
		key := rateKey{q.Scope, q.Window}
		rs := rc.scopes[key]
		if rs == nil {
			continue
		}
		n := store.RateSlot(at, q.Window)
		i := slices.IndexFunc(rs.slots, func(s rateSlot) bool { return s.n == n })
		if i < 0 {
			continue
		}
		sl := &rs.slots[i]
		sl.m, sl.r = max(sl.m-q.Messages, 0), max(sl.r-q.Recipients, 0)
		if sl.m == 0 && sl.r == 0 {
			rs.slots = slices.Delete(rs.slots, i, i+1)
		}
		rc.markDirty(key, rs)
		if len(rs.slots) == 0 {
			delete(rc.scopes, key)
		}
	}
	return nil
}

// markDirty lists key for the next save, once; rs is its scope (nil when
// it is gone). rc.mu is held.
func (rc *rateCounts) markDirty(key rateKey, rs *rateScope) {
	if rs == nil {
		rc.dirty = append(rc.dirty, key)
		return
	}
	if !rs.dirty {
		rs.dirty = true
		rc.dirty = append(rc.dirty, key)
	}
}

// sweep drops the scopes whose window has passed; rc.mu is held.
func (rc *rateCounts) sweep(now time.Time) {
	if now.Sub(rc.lastSweep) < rateSweepEvery && !now.Before(rc.lastSweep) {
		return
	}
	rc.lastSweep = now
	for key, rs := range rc.scopes {
		rs.trim(store.RateSlot(now, key.window))
		if len(rs.slots) == 0 {
			delete(rc.scopes, key)
			if rs.dirty { // already listed: saved as gone
				continue
			}
			rc.dirty = append(rc.dirty, key)
		}
	}
}

// A saved scope: the key is the window (8 bytes, big-endian nanoseconds)
// then the scope; the value is its slots as varints (slot, messages,
// recipients).

func rateDBKey(k rateKey) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(k.window)), k.scope...)
}

func encodeRateScope(rs *rateScope) []byte {
	b := make([]byte, 0, 3*binary.MaxVarintLen64*len(rs.slots))
	for _, s := range rs.slots {
		b = binary.AppendVarint(b, s.n)
		b = binary.AppendVarint(b, s.m)
		b = binary.AppendVarint(b, s.r)
	}
	return b
}

func decodeRateScope(k, v []byte) (rateKey, *rateScope, error) {
	if len(k) < 8 {
		return rateKey{}, nil, fmt.Errorf("short key %x", k)
	}
	key := rateKey{window: time.Duration(binary.BigEndian.Uint64(k)), scope: string(k[8:])}
	rs := &rateScope{}
	for len(v) > 0 {
		var sl rateSlot
		for _, p := range []*int64{&sl.n, &sl.m, &sl.r} {
			x, n := binary.Varint(v)
			if n <= 0 {
				return key, nil, fmt.Errorf("scope %q: bad value", key.scope)
			}
			*p, v = x, v[n:]
		}
		rs.slots = append(rs.slots, sl)
	}
	return key, rs, nil
}

package embedded

import (
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// recoverState runs at Open, before anything else can use the store: it removes
// body files no committed record points to (left by a crash before or
// during Commit, an Abort that never ran, or a crash between collecting a
// message and removing its file), reports records whose body file is
// missing (which the commit order rules out unless the disk lost data),
// and rebuilds the Stats counters from the age index.
func (s *Store) recoverState() error {
	entries, err := os.ReadDir(s.spoolDir)
	if err != nil {
		return ioErr("read spool dir", err)
	}
	onDisk := make(map[string]bool, len(entries))
	var orphans []string
	var pending, deferred, held int64
	err = s.db.View(func(tx *bolt.Tx) error {
		files := tx.Bucket(bucketFiles)
		for _, e := range entries {
			name := e.Name()
			if e.Type().IsRegular() && files.Get([]byte(name)) != nil {
				onDisk[name] = true
			} else {
				orphans = append(orphans, name)
			}
		}
		err := files.ForEach(func(k, _ []byte) error {
			if !onDisk[string(k)] {
				s.log.Error("stored message has lost its body file", "id", string(k), "file", filepath.Join(s.spoolDir, string(k)))
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketAge).ForEach(func(_, v []byte) error {
			pending++
			if len(v) == 1 && v[0] == ageDeferred {
				deferred++
			}
			return nil
		})
		if err != nil {
			return err
		}
		held = int64(tx.Bucket(bucketHeld).Stats().KeyN)
		return nil
	})
	if err != nil {
		return fmt.Errorf("embedded: recover: %w", err)
	}
	for _, name := range orphans {
		if err := os.RemoveAll(filepath.Join(s.spoolDir, name)); err != nil {
			return ioErr("remove orphan spool file", err)
		}
	}
	if len(orphans) > 0 {
		s.log.Info("removed spool files of uncommitted messages", "count", len(orphans), "dir", s.spoolDir)
	}
	s.pending.Store(pending)
	s.deferred.Store(deferred)
	s.held.Store(held)
	return nil
}

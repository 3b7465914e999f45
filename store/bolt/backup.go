package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/superset-gateway/superset-gateway/store"
)

// Backup writes a consistent copy of the whole file to w while the store
// keeps serving: one read transaction sees every write committed before it
// began and none after, and bbolt's copy-on-write pages let writers go on
// meanwhile. size, if not nil, is called first with the copy's exact
// length (the admin route sends it as Content-Length, so that a copy cut
// short is noticed by the client). It returns the bytes written.
func (s *Store) Backup(ctx context.Context, w io.Writer, size func(int64)) (int64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, mapErr("backup", err)
	}
	var n int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		if size != nil {
			size(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("bolt backup: %w", err)
	}
	return n, nil
}

// Info describes a store file without opening it for writing.
type Info struct {
	// Generation is the store's generation marker (store.GenerationKey),
	// empty when it has none.
	Generation string `json:"generation"`
	// Keys counts the live string keys.
	Keys int `json:"keys"`
}

// ErrNotAStore is returned by Inspect for a file that is not a bbolt file
// written by this package (a truncated copy, another database, garbage).
var ErrNotAStore = errors.New("not a gateway store file")

// Inspect opens path read-only (it must exist; nothing is created) and
// checks that it is a store this package wrote: a bbolt file with its
// buckets. A backup is inspected before it is restored, so that a
// truncated or foreign file never replaces the live store. lockTimeout
// bounds the wait for a process that holds the file (a running gateway):
// then the error wraps store.ErrUnavailable.
func Inspect(path string, lockTimeout time.Duration) (Info, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Info{}, fmt.Errorf("bolt: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Info{}, fmt.Errorf("bolt: %s: %w: not a regular file", path, ErrNotAStore)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return Info{}, fmt.Errorf("bolt: %s is held by another process (a running gateway?): %w", path, store.ErrUnavailable)
		}
		return Info{}, fmt.Errorf("bolt: %s: %w: %w", path, ErrNotAStore, err)
	}
	defer db.Close()
	info, err := inspect(db, st.Size())
	if err != nil {
		return Info{}, fmt.Errorf("bolt: %s: %w", path, err)
	}
	return info, nil
}

// inspect reads an opened file whose pages may be anything. bbolt trusts
// its pages and panics on a corrupt one, so: the file must be as long as
// its meta page says, every page must pass bbolt's own consistency check
// before a bucket is read, and a panic left anyway is a refusal.
func inspect(db *bbolt.DB, fileSize int64) (info Info, err error) {
	defer func() {
		if v := recover(); v != nil {
			info, err = Info{}, fmt.Errorf("%w: corrupt: %v", ErrNotAStore, v)
		}
	}()
	err = db.View(func(tx *bbolt.Tx) error {
		if tx.Size() > fileSize {
			return fmt.Errorf("%w: truncated: %d bytes, its meta page says %d", ErrNotAStore, fileSize, tx.Size())
		}
		var first error
		for cerr := range tx.Check() { // drained: Check stops when read to the end
			if first == nil {
				first = fmt.Errorf("%w: %w", ErrNotAStore, cerr)
			}
		}
		if first != nil {
			return first
		}
		for _, b := range [][]byte{bucketKV, bucketExp, bucketSets, bucketLists} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("%w: bucket %q missing", ErrNotAStore, b)
			}
		}
		now := time.Now().UnixNano()
		return tx.Bucket(bucketKV).ForEach(func(k, v []byte) error {
			if len(v) < 8 {
				return fmt.Errorf("%w: key %q has no expiry header", ErrNotAStore, k)
			}
			if exp := int64(binary.BigEndian.Uint64(v[:8])); exp != 0 && exp <= now {
				return nil
			}
			info.Keys++
			if string(k) == store.GenerationKey {
				info.Generation = string(v[8:])
			}
			return nil
		})
	})
	return info, err
}

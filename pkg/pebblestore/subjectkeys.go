package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sextant-analytics/sextant/pkg/seal"
)

// Keys is the embedded key store of subject keys (seal.Keys), a Pebble
// database of its own. Pebble keeps obsolete files around: it reuses old
// write-ahead log files (their old contents stay readable until
// overwritten) and deletes replaced tables in the background. So the store
// has its obsolete files archived instead of recycled, and a deletion
// flushes the log, compacts the keys, waits for the replaced files to be
// archived and then deletes the archive: once Forget returns, the
// destroyed secret is in no file of the store.
//
// Rows:
//
//	's' esc(property) subject   the subject's key: id ‖ secret
//	'i' esc(property) id        a key by id: secret
type Keys struct {
	db  *pebble.DB
	log *slog.Logger

	life   sync.RWMutex // held shared by operations, exclusively by Close
	closed bool
	dir    string
	mu     sync.Mutex // serializes changes
}

var errKeysClosed = errors.New("pebblestore: key store closed")

var _ seal.Keys = (*Keys)(nil)

const (
	keysBySubject = 's'
	keysByID      = 'i'
)

// OpenKeys opens (creating if needed) the key store in dir.
func OpenKeys(dir string, logger *slog.Logger) (*Keys, error) {
	if logger == nil {
		logger = slog.Default()
	}
	db, err := pebble.Open(dir, &pebble.Options{
		Cleaner:            pebble.ArchiveCleaner{},
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{l: logger.With("component", "pebble-keys")},
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: open keys %s: %w", dir, err)
	}
	k := &Keys{db: db, log: logger, dir: dir}
	if err := k.purgeArchive(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return k, nil
}

// purgeArchive deletes the obsolete files Pebble archived.
func (k *Keys) purgeArchive() error {
	dir := filepath.Join(k.dir, "archive")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pebblestore: keys archive: %w", err)
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pebblestore: purge the keys archive: %w", err)
		}
	}
	return nil
}

// Close closes the store.
func (k *Keys) Close() error {
	k.life.Lock()
	defer k.life.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	return k.db.Close()
}

func subjectPrefix(property string, s seal.Subject) []byte {
	return append(appendEscaped([]byte{keysBySubject}, property), s[:]...)
}

func idRow(property string, id seal.ID) []byte {
	return append(appendEscaped([]byte{keysByID}, property), id[:]...)
}

func (k *Keys) get(key []byte) ([]byte, bool, error) {
	v, closer, err := k.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	return bytes.Clone(v), true, nil
}

func (k *Keys) subjectKey(row []byte) (seal.Key, bool, error) {
	v, ok, err := k.get(row)
	if err != nil {
		return seal.Key{}, false, fmt.Errorf("pebblestore: read a subject key: %w", err)
	}
	if !ok {
		return seal.Key{}, false, nil
	}
	if len(v) != seal.IDSize+seal.SecretSize {
		return seal.Key{}, false, fmt.Errorf("pebblestore: subject key of %d bytes: %w", len(v), errCorrupt)
	}
	var key seal.Key
	copy(key.ID[:], v)
	copy(key.Secret[:], v[seal.IDSize:])
	return key, true, nil
}

// enter registers an operation; when it returns nil, the caller must call
// k.life.RUnlock.
func (k *Keys) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.life.RLock()
	if k.closed {
		k.life.RUnlock()
		return errKeysClosed
	}
	return nil
}

// FindSubjectKey implements seal.Keys.
func (k *Keys) FindSubjectKey(ctx context.Context, property string, sub seal.Subject) (seal.Key, bool, error) {
	if err := k.enter(ctx); err != nil {
		return seal.Key{}, false, err
	}
	defer k.life.RUnlock()
	return k.subjectKey(subjectPrefix(property, sub))
}

// AddSubjectKey implements seal.Keys: both rows in one synced batch, under
// the store's lock of changes (the subject has one key).
func (k *Keys) AddSubjectKey(ctx context.Context, property string, sub seal.Subject, key seal.Key) (seal.Key, error) {
	if err := k.enter(ctx); err != nil {
		return seal.Key{}, err
	}
	defer k.life.RUnlock()
	row := subjectPrefix(property, sub)
	k.mu.Lock()
	defer k.mu.Unlock()
	if had, ok, err := k.subjectKey(row); err != nil || ok {
		return had, err
	}
	b := k.db.NewBatch()
	_ = b.Set(row, append(key.ID[:], key.Secret[:]...), nil)
	_ = b.Set(idRow(property, key.ID), key.Secret[:], nil)
	err := b.Commit(pebble.Sync)
	_ = b.Close()
	if err != nil {
		return seal.Key{}, fmt.Errorf("pebblestore: store a subject key: %w", err)
	}
	return key, nil
}

// Key implements seal.Keys.
func (k *Keys) Key(ctx context.Context, property string, id seal.ID) (seal.Key, error) {
	if err := k.enter(ctx); err != nil {
		return seal.Key{}, err
	}
	defer k.life.RUnlock()
	v, ok, err := k.get(idRow(property, id))
	switch {
	case err != nil:
		return seal.Key{}, fmt.Errorf("pebblestore: read key %s: %w", id, err)
	case !ok:
		return seal.Key{}, fmt.Errorf("pebblestore: key %s of property %s: %w", id, property, seal.ErrShredded)
	case len(v) != seal.SecretSize:
		return seal.Key{}, fmt.Errorf("pebblestore: key of %d bytes: %w", len(v), errCorrupt)
	}
	key := seal.Key{ID: id}
	copy(key.Secret[:], v)
	return key, nil
}

// Forget implements seal.Keys.
func (k *Keys) Forget(ctx context.Context, property string, sub seal.Subject) (bool, error) {
	if err := k.enter(ctx); err != nil {
		return false, err
	}
	defer k.life.RUnlock()
	row := subjectPrefix(property, sub)
	k.mu.Lock()
	key, ok, err := k.subjectKey(row)
	if err != nil || !ok {
		k.mu.Unlock()
		return false, err
	}
	b := k.db.NewBatch()
	_ = b.Delete(row, nil)
	_ = b.Delete(idRow(property, key.ID), nil)
	err = b.Commit(pebble.Sync)
	_ = b.Close()
	if err != nil {
		k.mu.Unlock()
		return false, fmt.Errorf("pebblestore: delete a subject key: %w", err)
	}
	// The secret is in a log file or tables: the log is flushed (its file
	// becomes obsolete), the tables are rewritten without the key, the
	// replaced files are archived (in the background: wait for it), and
	// the archive is deleted. Deletions are serialized for it.
	defer k.mu.Unlock()
	if err := k.db.Flush(); err != nil {
		return true, fmt.Errorf("pebblestore: flush the deleted key away: %w", err)
	}
	if err := k.db.Compact(ctx, []byte{0}, []byte{0xff}, false); err != nil {
		return true, fmt.Errorf("pebblestore: compact the deleted key away: %w", err)
	}
	for {
		m := k.db.Metrics()
		if m.Table.ObsoleteCount == 0 && m.Table.ZombieCount == 0 && m.WAL.ObsoleteFiles == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return true, fmt.Errorf("pebblestore: waiting for the deleted key's old files: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true, k.purgeArchive()
}

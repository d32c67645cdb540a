package metadatatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/metadata"
	"github.com/sextant-analytics/sextant/pkg/mutants"
)

// The suite checks itself: memStore is a small in-memory reference Store
// that passes it, and each mutant is a memStore with one bug that one
// subtest must catch.

const mutantEnv = "METADATATEST_MUTANT"

// mutantList names each mutant and the subtest that must catch it.
var mutantList = map[string]string{
	"get-missing-nil":         "GetMissing",
	"get-missing-other-error": "GetMissing",
	"get-prefix-match":        "GetMissing",
	"empty-value-nil":         "PutGet",
	"put-keeps-first":         "PutGet",
	"key-cut-at-nul":          "PutGet",
	"put-keeps-caller-slices": "Ownership",
	"get-shares-value":        "Ownership",
	"empty-key-stored":        "EmptyKey",
	"empty-key-delete-error":  "EmptyKey",
	"delete-missing-error":    "Delete",
	"delete-prefix":           "Delete",
	"scan-reverse":            "Scan",
	"scan-signed-bytes":       "Scan",
	"scan-prefix-end-ff":      "Scan",
	"scan-kind-only":          "Scan",
	"scan-reuses-buffers":     "ScanOwnership",
	"scan-ignores-fn-error":   "ScanStops",
	"scan-wraps-fn-error":     "ScanStops",
	"scan-live-index":         "ScanWhileWriting",
	"value-max-64k":           "Limits",
	"not-durable":             "Durability",
	"ignores-context":         "CancelledContext",
	"works-after-close":       "Closed",
	"second-close-error":      "Closed",
}

func TestMemStore(t *testing.T) {
	mutant := os.Getenv(mutantEnv)
	Run(t, func(t *testing.T) func() metadata.Store {
		d := &memData{m: map[string][]byte{}}
		return func() metadata.Store {
			if mutant == "not-durable" {
				d = &memData{m: map[string][]byte{}}
			}
			return &memStore{d: d, mutant: mutant}
		}
	})
}

func TestSuiteCatchesMutants(t *testing.T) {
	mutants.Check(t, mutantEnv, "TestMemStore", mutantList)
}

// memData is the storage a memStore opens: it outlives Close.
type memData struct {
	mu sync.Mutex
	m  map[string][]byte
}

type memStore struct {
	d      *memData
	mutant string
	mu     sync.Mutex
	closed bool
}

var errMemClosed = errors.New("memstore: closed")

func (s *memStore) enter(ctx context.Context) error {
	if s.mutant != "ignores-context" {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memstore: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed && s.mutant != "works-after-close" {
		return errMemClosed
	}
	return nil
}

func (s *memStore) key(key []byte) string {
	if s.mutant == "key-cut-at-nul" {
		if i := bytes.IndexByte(key, 0); i >= 0 {
			key = key[:i]
		}
	}
	return string(key)
}

func (s *memStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	v, ok := s.d.m[s.key(key)]
	if !ok && s.mutant == "get-prefix-match" {
		for _, k := range slices.Sorted(maps.Keys(s.d.m)) {
			if strings.HasPrefix(k, string(key)) {
				v, ok = s.d.m[k], true
				break
			}
		}
	}
	switch {
	case !ok && s.mutant == "get-missing-nil":
		return nil, nil
	case !ok && s.mutant == "get-missing-other-error":
		return nil, errors.New("memstore: no such key")
	case !ok || len(key) == 0 && s.mutant != "empty-key-stored":
		return nil, fmt.Errorf("memstore: %q: %w", key, metadata.ErrNotFound)
	case len(v) == 0 && s.mutant == "empty-value-nil":
		return nil, nil
	case s.mutant == "get-shares-value":
		return v, nil
	}
	return bytes.Clone(v), nil
}

func (s *memStore) Put(ctx context.Context, key, value []byte) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	if len(key) == 0 && s.mutant != "empty-key-stored" {
		return fmt.Errorf("memstore: put: %w", metadata.ErrEmptyKey)
	}
	if s.mutant == "value-max-64k" && len(value) > 64<<10 {
		value = value[:64<<10]
	}
	if s.mutant != "put-keeps-caller-slices" {
		value = append([]byte{}, value...)
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	k := s.key(key)
	if _, ok := s.d.m[k]; ok && s.mutant == "put-keeps-first" {
		return nil
	}
	s.d.m[k] = value
	return nil
}

func (s *memStore) Delete(ctx context.Context, key []byte) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	if len(key) == 0 && s.mutant == "empty-key-delete-error" {
		return errors.New("memstore: delete of the empty key")
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	k := s.key(key)
	if _, ok := s.d.m[k]; !ok && s.mutant == "delete-missing-error" {
		return fmt.Errorf("memstore: delete %q: %w", key, metadata.ErrNotFound)
	}
	if s.mutant == "delete-prefix" {
		for kk := range s.d.m {
			if strings.HasPrefix(kk, k) {
				delete(s.d.m, kk)
			}
		}
	}
	delete(s.d.m, k)
	return nil
}

// matches returns the keys under prefix, sorted as the mutant has it.
func (s *memStore) matches(prefix []byte) []string {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	p := string(prefix)
	var keys []string
	for k := range s.d.m {
		switch {
		case s.mutant == "scan-prefix-end-ff" && p != "":
			// The range [p, p+"\xff"): misses keys continuing with 0xff.
			if k >= p && k < p+"\xff" {
				keys = append(keys, k)
			}
		case s.mutant == "scan-kind-only" && !strings.Contains(p, "/"):
			// A prefix without '/' matches only whole kinds: keys that
			// are the prefix, or the prefix and a '/'.
			if k == p || strings.HasPrefix(k, p+"/") {
				keys = append(keys, k)
			}
		case strings.HasPrefix(k, p):
			keys = append(keys, k)
		}
	}
	switch s.mutant {
	case "scan-reverse":
		slices.Sort(keys)
		slices.Reverse(keys)
	case "scan-signed-bytes":
		slices.SortFunc(keys, func(a, b string) int {
			for i := 0; i < len(a) && i < len(b); i++ {
				if a[i] != b[i] {
					return int(int8(a[i])) - int(int8(b[i]))
				}
			}
			return len(a) - len(b)
		})
	default:
		slices.Sort(keys)
	}
	return keys
}

func (s *memStore) Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	keys := s.matches(prefix)
	var buf []byte
	for i := 0; i < len(keys); i++ {
		k := keys[i]
		s.d.mu.Lock()
		v, ok := s.d.m[k]
		s.d.mu.Unlock()
		if !ok {
			continue // deleted during the scan
		}
		key := []byte(k)
		if s.mutant == "scan-reuses-buffers" {
			buf = append(buf[:0], k...)
			key = buf
		}
		if s.mutant != "scan-reuses-buffers" {
			v = bytes.Clone(v)
		}
		if v == nil {
			v = []byte{}
		}
		err := fn(key, v)
		if s.mutant == "scan-live-index" {
			// Walks the live key list by index: deleting the key it is
			// on shifts the next one under the index it skips to.
			keys = s.matches(prefix)
		}
		switch {
		case err == nil, s.mutant == "scan-ignores-fn-error":
		case s.mutant == "scan-wraps-fn-error":
			return fmt.Errorf("memstore: scan: %w", err)
		default:
			return err
		}
	}
	return nil
}

func (s *memStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed && s.mutant == "second-close-error" {
		return errMemClosed
	}
	s.closed = true
	return nil
}

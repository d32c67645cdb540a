// Package versions records which version of each projection serves reads.
package versions

import (
	"context"
	"errors"
	"fmt"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// KV is the metadata store the registry lives in.
type KV interface {
	Get(ctx context.Context, key []byte) ([]byte, error)
	Put(ctx context.Context, key, value []byte) error
}

// Registry maps a projection to its active version.
type Registry struct {
	kv       KV
	defaults map[string]string
}

// NewRegistry returns a registry; defaults give the active version of a
// projection never switched.
func NewRegistry(kv KV, defaults map[string]string) *Registry {
	return &Registry{kv: kv, defaults: defaults}
}

func activeKey(name string) []byte { return []byte("projection/active/" + name) }

// Active returns the version serving reads for projection name.
func (r *Registry) Active(ctx context.Context, name string) (string, error) {
	b, err := r.kv.Get(ctx, activeKey(name))
	if errors.Is(err, viewstore.ErrNotFound) {
		if v, ok := r.defaults[name]; ok {
			return v, nil
		}
		return "", fmt.Errorf("versions: no active version of %q", name)
	}
	if err != nil {
		return "", fmt.Errorf("versions: %w", err)
	}
	return string(b), nil
}

// SetActive switches reads of projection name to version.
func (r *Registry) SetActive(ctx context.Context, name, version string) error {
	return r.kv.Put(ctx, activeKey(name), []byte(version))
}

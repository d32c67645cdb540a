// Package versions is the registry of projection versions, kept in the
// metadata store (pkg/metadata): each version's state and where its replay
// started, which version serves reads, and the history of activations that
// rollback walks back.
package versions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sextant-analytics/sextant/pkg/metadata"
)

// State is where a version is in its life.
type State string

const (
	// Running: building from the log or caught up; whether it serves reads
	// is the active pointer's business.
	Running State = "running"
	// Retired: no longer processed; its read model is being deleted.
	Retired State = "retired"
	// Deleted marks a default version that was deleted (others are simply
	// forgotten).
	Deleted State = "deleted"
)

// From says where a version's replay starts.
type From struct {
	// Time, when set, was resolved into Offsets when the replay started.
	Time *time.Time `json:"time,omitempty"`
	// Offsets are the next offsets per partition to start from; absent
	// partitions start at 0 (the start of the log).
	Offsets map[int32]int64 `json:"offsets,omitempty"`
}

// Version is one projection version.
type Version struct {
	Name    string    `json:"name"`
	Version string    `json:"version"`
	State   State     `json:"state"`
	Created time.Time `json:"created"`
	From    From      `json:"from"`
	// Build names this build of the version: a random id given when the
	// version is recorded (a replay starts), so that a version deleted and
	// rebuilt under the same name is told apart from its earlier build
	// (cached answers are keyed by it). Empty for the default version
	// before anything recorded it, and for versions recorded before builds
	// existed. It is a field of the record's JSON in the view store's
	// metadata, so no schema changes.
	Build string `json:"build,omitempty"`
	// Ends are the log's end offsets per partition when the replay
	// started: the version has caught up only once it reached every one of
	// them. Empty for the default version and versions recorded before
	// replays kept them.
	Ends map[int32]int64 `json:"ends,omitempty"`
	// Replaces, on a rebuild, names the version it rebuilds: once caught
	// up it takes that version's place (active pointer and history), and
	// that version is deleted.
	Replaces string `json:"replaces,omitempty"`
}

// Base is the logic version a version runs: a rebuild "v5+r…" runs v5.
func Base(version string) string {
	b, _, _ := strings.Cut(version, "+")
	return b
}

// RebuildName names the rebuild of version started for deletions up to at.
func RebuildName(version string, at time.Time) string {
	return Base(version) + "+r" + strconv.FormatInt(at.Unix(), 36)
}

// NewBuild returns a new build id.
func NewBuild() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b[:])
}

// ErrNotFound is returned for an unknown version.
var ErrNotFound = errors.New("versions: not found")

// Registry is the registry. defaults gives, per projection, the version
// that exists and is active before anybody replayed or activated anything.
type Registry struct {
	kv       metadata.KV
	defaults map[string]string
}

// NewRegistry returns a registry over kv.
func NewRegistry(kv metadata.KV, defaults map[string]string) *Registry {
	return &Registry{kv: kv, defaults: defaults}
}

func activeKey(name string) []byte           { return []byte("projection/active/" + name) }
func historyKey(name string) []byte          { return []byte("projection/history/" + name) }
func versionPrefix(name string) []byte       { return []byte("projection/version/" + name + "/") }
func versionKey(name, version string) []byte { return append(versionPrefix(name), version...) }

// Active returns the version serving reads for projection name.
func (r *Registry) Active(ctx context.Context, name string) (string, error) {
	b, err := r.kv.Get(ctx, activeKey(name))
	if errors.Is(err, metadata.ErrNotFound) {
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

// History returns the versions activated so far, oldest first; the last is
// the active one.
func (r *Registry) History(ctx context.Context, name string) ([]string, error) {
	b, err := r.kv.Get(ctx, historyKey(name))
	if errors.Is(err, metadata.ErrNotFound) {
		if v, ok := r.defaults[name]; ok {
			return []string{v}, nil
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	var h []string
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("versions: history of %s: %w", name, err)
	}
	return h, nil
}

// Activate makes version the one serving reads. Readers switch with one
// write of the active pointer, so each read sees the old or the new
// version, never a mix.
func (r *Registry) Activate(ctx context.Context, name, version string) error {
	h, err := r.History(ctx, name)
	if err != nil {
		return err
	}
	if len(h) > 0 && h[len(h)-1] == version {
		return nil
	}
	h = append(h, version)
	if len(h) > 50 {
		h = h[len(h)-50:]
	}
	return r.setHistory(ctx, name, h)
}

// Start makes version the active one of a projection that has none yet
// (no version was ever activated: the default serves), as its only
// version (running from the start of the log; the default, when another,
// is recorded as deleted so that it does not run), and reports whether it
// did. Processes starting at once may all write it: they write the same.
func (r *Registry) Start(ctx context.Context, name, version string) (bool, error) {
	_, err := r.kv.Get(ctx, historyKey(name))
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, metadata.ErrNotFound) {
		return false, fmt.Errorf("versions: %w", err)
	}
	if d, ok := r.defaults[name]; ok && d != version {
		if _, err := r.Get(ctx, name, version); errors.Is(err, ErrNotFound) {
			if err := r.Put(ctx, Version{Name: name, Version: version, State: Running, Created: time.Now().UTC(), Build: NewBuild()}); err != nil {
				return false, err
			}
		}
		if _, err := r.kv.Get(ctx, versionKey(name, d)); errors.Is(err, metadata.ErrNotFound) {
			if err := r.Delete(ctx, name, d); err != nil {
				return false, err
			}
		}
	}
	return true, r.setHistory(ctx, name, []string{version})
}

// Replace puts version in old's place: in the history, and as the active
// version when old is. Readers switch with the active pointer's write.
func (r *Registry) Replace(ctx context.Context, name, old, version string) error {
	h, err := r.History(ctx, name)
	if err != nil {
		return err
	}
	changed := false
	for i := range h {
		if h[i] == old {
			h[i], changed = version, true
		}
	}
	if !changed {
		return nil
	}
	h = slices.Compact(h)
	return r.setHistory(ctx, name, h)
}

// Rollback reactivates the version active before the current one and
// returns it.
func (r *Registry) Rollback(ctx context.Context, name string) (string, error) {
	h, err := r.History(ctx, name)
	if err != nil {
		return "", err
	}
	if len(h) < 2 {
		return "", fmt.Errorf("versions: %s has no earlier active version to roll back to", name)
	}
	h = h[:len(h)-1]
	return h[len(h)-1], r.setHistory(ctx, name, h)
}

// Previous returns the version a rollback would reactivate, or "".
func (r *Registry) Previous(ctx context.Context, name string) (string, error) {
	h, err := r.History(ctx, name)
	if err != nil || len(h) < 2 {
		return "", err
	}
	return h[len(h)-2], nil
}

func (r *Registry) setHistory(ctx context.Context, name string, h []string) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := r.kv.Put(ctx, historyKey(name), b); err != nil {
		return fmt.Errorf("versions: %w", err)
	}
	// The active pointer is written last: readers switch here.
	if err := r.kv.Put(ctx, activeKey(name), []byte(h[len(h)-1])); err != nil {
		return fmt.Errorf("versions: %w", err)
	}
	return nil
}

// Put records a version.
func (r *Registry) Put(ctx context.Context, v Version) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := r.kv.Put(ctx, versionKey(v.Name, v.Version), b); err != nil {
		return fmt.Errorf("versions: %w", err)
	}
	return nil
}

// Get returns a version; the default version exists even if never
// recorded.
func (r *Registry) Get(ctx context.Context, name, version string) (Version, error) {
	b, err := r.kv.Get(ctx, versionKey(name, version))
	if errors.Is(err, metadata.ErrNotFound) {
		if r.defaults[name] == version {
			return Version{Name: name, Version: version, State: Running}, nil
		}
		return Version{}, fmt.Errorf("%w: %s/%s", ErrNotFound, name, version)
	}
	if err != nil {
		return Version{}, fmt.Errorf("versions: %w", err)
	}
	var v Version
	if err := json.Unmarshal(b, &v); err != nil {
		return Version{}, fmt.Errorf("versions: %s/%s: %w", name, version, err)
	}
	if v.State == Deleted {
		return Version{}, fmt.Errorf("%w: %s/%s", ErrNotFound, name, version)
	}
	return v, nil
}

// List returns the versions of projection name, the default one included,
// ordered by version.
func (r *Registry) List(ctx context.Context, name string) ([]Version, error) {
	var out []Version
	err := r.kv.Scan(ctx, versionPrefix(name), func(_, b []byte) error {
		var v Version
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	if d, ok := r.defaults[name]; ok && !slices.ContainsFunc(out, func(v Version) bool { return v.Version == d }) {
		out = append(out, Version{Name: name, Version: d, State: Running})
	}
	out = slices.DeleteFunc(out, func(v Version) bool { return v.State == Deleted })
	sort.Slice(out, func(i, j int) bool { return versionLess(out[i].Version, out[j].Version) })
	return out, nil
}

// Delete forgets a version.
func (r *Registry) Delete(ctx context.Context, name, version string) error {
	if r.defaults[name] == version {
		return r.Put(ctx, Version{Name: name, Version: version, State: Deleted})
	}
	return r.kv.Delete(ctx, versionKey(name, version))
}

func versionLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

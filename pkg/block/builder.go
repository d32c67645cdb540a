package block

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/sextant-analytics/sextant/pkg/analytics"
)

// entryKey identifies an entry within a section.
type entryKey struct {
	bucket int64
	dims   string
}

// Builder accumulates one block's aggregates in memory (the projection's
// open additions). It is not safe for concurrent use.
type Builder struct {
	layout Layout
	// secs map each section's entries by key: the bucket, 8 bytes
	// big-endian, then the dims (so that a lookup from bytes allocates
	// nothing).
	secs []map[string]*analytics.Aggregate
	n    int
	err  error
	key  []byte // scratch
	// arena, when set, is where the builder's aggregates come from
	// (NewBuilderIn).
	arena *analytics.Arena

	// Reused by AppendTo.
	sorted []builderEntry
	body   []byte
}

type builderEntry struct {
	entryKey
	agg *analytics.Aggregate
}

// NewBuilder returns an empty builder of the layout's sections. A layout
// with an unknown grain or a section twice makes AppendTo fail.
func NewBuilder(layout Layout) *Builder {
	b := &Builder{layout: slices.Clone(layout), secs: make([]map[string]*analytics.Aggregate, len(layout))}
	for i, s := range layout {
		if !validGrain(s.Grain) {
			b.err = fmt.Errorf("block: section %d: grain %d", i, s.Grain)
		}
		for j := range i {
			if layout[j].Equal(s) {
				b.err = fmt.Errorf("block: section %d repeats section %d", i, j)
			}
		}
		b.secs[i] = make(map[string]*analytics.Aggregate)
	}
	return b
}

// NewBuilderIn is NewBuilder with its aggregates taken from arena: they
// are valid until the arena is Reset, which its owner does only once the
// builder is Reset too (after encoding it).
func NewBuilderIn(layout Layout, arena *analytics.Arena) *Builder {
	b := NewBuilder(layout)
	b.arena = arena
	return b
}

// Agg returns the aggregate of section i's entry at bucket (absolute Unix
// seconds, already floored to the section's grain by the caller) and dims
// key, creating an empty one (analytics.NewAggregate). When the entry
// exists it costs one map lookup and allocates nothing; dims is copied
// only when the entry is created.
func (b *Builder) Agg(section int, bucket int64, dims string) *analytics.Aggregate {
	b.key = append(binary.BigEndian.AppendUint64(b.key[:0], uint64(bucket)), dims...)
	return b.agg(section)
}

// AggBytes is Agg with the dims key as bytes, which it does not keep.
func (b *Builder) AggBytes(section int, bucket int64, dims []byte) *analytics.Aggregate {
	b.key = append(binary.BigEndian.AppendUint64(b.key[:0], uint64(bucket)), dims...)
	return b.agg(section)
}

func (b *Builder) agg(section int) *analytics.Aggregate {
	m := b.secs[section]
	if a, ok := m[string(b.key)]; ok {
		return a
	}
	var a *analytics.Aggregate
	if b.arena != nil {
		a = b.arena.New()
	} else {
		a = analytics.NewAggregate()
	}
	m[string(b.key)] = a
	b.n++
	return a
}

// Entries is the number of entries over all sections.
func (b *Builder) Entries() int { return b.n }

// SectionEntries is the number of entries of section i.
func (b *Builder) SectionEntries(i int) int { return len(b.secs[i]) }

// Layout is the builder's layout.
func (b *Builder) Layout() Layout { return b.layout }

// AppendTo appends the block's encoding (base: the period start, Unix
// seconds) to dst. Every bucket must lie on its section's grain.
func (b *Builder) AppendTo(dst []byte, base int64) ([]byte, error) {
	return b.AppendSectionsTo(dst, base, nil)
}

// AppendSectionsTo is AppendTo for the sections whose indexes are listed
// (nil: all of them): a block of part of the builder's sections.
func (b *Builder) AppendSectionsTo(dst []byte, base int64, sections []int) ([]byte, error) {
	if b.err != nil {
		return dst, b.err
	}
	if !inTime(base) {
		return dst, fmt.Errorf("block: base %d out of range", base)
	}
	type span struct{ sec, count, size int }
	spans := make([]span, 0, len(b.secs))
	body := b.body[:0]
	for i, m := range b.secs {
		if len(m) == 0 || sections != nil && !slices.Contains(sections, i) {
			continue
		}
		g := b.layout[i].Grain
		es := b.sorted[:0]
		for k, a := range m {
			es = append(es, builderEntry{entryKey{int64(binary.BigEndian.Uint64([]byte(k[:8]))), k[8:]}, a})
		}
		slices.SortFunc(es, func(x, y builderEntry) int {
			if c := cmp.Compare(x.bucket, y.bucket); c != 0 {
				return c
			}
			return strings.Compare(x.dims, y.dims)
		})
		start := len(body)
		for _, e := range es {
			rel, err := relOf(g, base, e.bucket)
			if err != nil {
				return dst, err
			}
			body, err = appendAggEntry(body, rel, e.dims, e.agg)
			if err != nil {
				return dst, err
			}
		}
		clear(es)
		b.sorted = es[:0]
		spans = append(spans, span{i, len(es), len(body) - start})
	}
	b.body = body
	dst = append(dst, version)
	dst = binary.AppendVarint(dst, base)
	dst = binary.AppendUvarint(dst, uint64(len(spans)))
	for _, s := range spans {
		dst = appendHeader(dst, b.layout[s.sec], s.count, s.size)
	}
	return append(dst, body...), nil
}

// appendAggEntry appends an entry of an aggregate to encode.
func appendAggEntry[D string | []byte](dst []byte, rel int64, dims D, a *analytics.Aggregate) ([]byte, error) {
	dst = binary.AppendVarint(dst, rel)
	dst = binary.AppendUvarint(dst, uint64(len(dims)))
	dst = append(dst, dims...)
	return appendValue(dst, a)
}

// appendValue appends a's encoding, length-prefixed.
func appendValue(dst []byte, a *analytics.Aggregate) ([]byte, error) {
	// Reserve a 2-byte length (values under 16 KiB, most of them), encode,
	// then fix the prefix up.
	at := len(dst)
	dst = append(dst, 0, 0)
	dst, err := a.AppendBinary(dst)
	if err != nil {
		return nil, err
	}
	n := len(dst) - at - 2
	k := uvarintLen(uint64(n))
	switch {
	case k < 2:
		copy(dst[at+1:], dst[at+2:])
		dst = dst[:len(dst)-1]
	case k > 2:
		dst = append(dst, make([]byte, k-2)...)
		copy(dst[at+k:], dst[at+2:at+2+n])
	}
	binary.PutUvarint(dst[at:at+k], uint64(n))
	return dst, nil
}

// Reset empties the builder, keeping its capacity.
func (b *Builder) Reset() {
	for _, m := range b.secs {
		clear(m)
	}
	b.n = 0
}

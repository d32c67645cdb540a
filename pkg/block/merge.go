package block

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/sextant-analytics/sextant/pkg/analytics"
)

// Merge merges encoded blocks into one encoded block with the given base,
// appended to dst. Sections are matched by Section.Equal; entries with the
// same bucket and dims are merged with analytics.Aggregate.Merge. regrain
// maps each input section to the output section's grain, 0 dropping the
// section (nil: identity), which also selects sections; entry buckets are floored to the
// output grain (UTC). Inputs may have different bases. The output's
// sections are in order of first appearance across the inputs.
//
// Entries found in one input only are copied without decoding their
// values; only entries present in several inputs (or, when regrain
// coarsens, falling into the same coarser bucket) are decoded, merged and
// encoded again. On error dst is returned unchanged.
func Merge(dst []byte, base int64, regrain func(Section) Grain, blocks ...[]byte) ([]byte, error) {
	if !inTime(base) {
		return dst, fmt.Errorf("block: base %d out of range", base)
	}
	type input struct {
		blk  int
		base int64
		h    *sectionHeader
	}
	type outSection struct {
		Section
		ins  []input
		same bool // every input has the output's grain
	}
	var outs []*outSection
	total := 0
	for bi, data := range blocks {
		bbase, hs, err := parse(data)
		if err != nil {
			return dst, fmt.Errorf("block: merge input %d: %w", bi, err)
		}
		total += len(data)
		for i := range hs {
			h := &hs[i]
			g := h.Grain
			if regrain != nil {
				g = regrain(Section{Grain: h.Grain, Dims: h.Dims})
			}
			if g == 0 {
				continue
			}
			if !validGrain(g) {
				return dst, fmt.Errorf("block: regrain %s to grain %d", h.Grain, g)
			}
			s := Section{Grain: g, Dims: h.Dims}
			var o *outSection
			for _, x := range outs {
				if x.Equal(s) {
					o = x
					break
				}
			}
			if o == nil {
				o = &outSection{Section: s, same: true}
				outs = append(outs, o)
			}
			o.ins = append(o.ins, input{bi, bbase, h})
			o.same = o.same && h.Grain == g
		}
	}

	bp := bodyPool.Get().(*[]byte)
	defer bodyPool.Put(bp)
	m := merger{body: slices.Grow((*bp)[:0], total)}
	type span struct{ count, size int }
	spans := make([]span, len(outs))
	for i, o := range outs {
		m.cs = m.cs[:0]
		for _, in := range o.ins {
			m.cs = append(m.cs, newCursor(blocks[in.blk], in.base, in.h))
		}
		start, count := len(m.body), m.count
		var err error
		if o.same {
			err = m.join(o.Grain, base)
		} else {
			err = m.group(o.Grain, base)
		}
		if err != nil {
			*bp = m.body[:0]
			return dst, err
		}
		spans[i] = span{m.count - count, len(m.body) - start}
	}
	*bp = m.body[:0]

	dst = append(dst, version)
	dst = binary.AppendVarint(dst, base)
	dst = binary.AppendUvarint(dst, uint64(len(outs)))
	for i, o := range outs {
		dst = appendHeader(dst, o.Section, spans[i].count, spans[i].size)
	}
	return append(dst, m.body...), nil
}

var bodyPool = sync.Pool{New: func() any { return new([]byte) }}

// merger writes the body of one output section at a time.
type merger struct {
	body  []byte
	count int
	cs    []cursor
	heap  []int       // indices into cs, a min-heap by (bucket, dims, index)
	grp   []int       // cursors of one group
	vals  [][]byte    // values of one group
	items []mergeItem // the entries of a regrained section
	scratch
}

type mergeItem struct {
	bucket int64
	dims   []byte
	value  []byte
}

// less orders cursors i and j by their current entry, then by index.
func (m *merger) less(i, j int) bool {
	a, b := &m.cs[i], &m.cs[j]
	if a.bucket != b.bucket {
		return a.bucket < b.bucket
	}
	if c := bytes.Compare(a.dims, b.dims); c != 0 {
		return c < 0
	}
	return i < j
}

func (m *merger) down(k int) {
	h := m.heap
	for {
		l := 2*k + 1
		if l >= len(h) {
			return
		}
		c := l
		if r := l + 1; r < len(h) && m.less(h[r], h[l]) {
			c = r
		}
		if !m.less(h[c], h[k]) {
			return
		}
		h[k], h[c] = h[c], h[k]
		k = c
	}
}

// pop removes the heap's top.
func (m *merger) pop() {
	n := len(m.heap) - 1
	m.heap[0] = m.heap[n]
	m.heap = m.heap[:n]
	m.down(0)
}

// join merges the cursors' sorted entries, all of the output grain g.
func (m *merger) join(g Grain, base int64) error {
	m.heap = m.heap[:0]
	for i := range m.cs {
		ok, err := m.cs[i].next()
		if err != nil {
			return err
		}
		if ok {
			m.heap = append(m.heap, i)
		}
	}
	for k := len(m.heap)/2 - 1; k >= 0; k-- {
		m.down(k)
	}
	for len(m.heap) > 0 {
		top := &m.cs[m.heap[0]]
		rel, err := relOf(g, base, top.bucket)
		if err != nil {
			return err
		}
		if len(m.heap) == 1 {
			// One input left: copy the rest of its entries.
			for {
				m.body = appendEntry(m.body, rel, top.dims, top.value)
				m.count++
				ok, err := top.next()
				if !ok {
					return err
				}
				if rel, err = relOf(g, base, top.bucket); err != nil {
					return err
				}
			}
		}
		// The group of equal entries: the top, then any child of a
		// group member equal to it (heap order puts them right below).
		group := m.collect(top.bucket, top.dims)
		if len(group) == 1 {
			m.body = appendEntry(m.body, rel, top.dims, top.value)
		} else {
			m.vals = m.vals[:0]
			for _, i := range group {
				m.vals = append(m.vals, m.cs[i].value)
			}
			if m.body, err = appendMerged(m.body, rel, top.dims, m.vals, &m.scratch); err != nil {
				return err
			}
		}
		m.count++
		// Advance the group's cursors and restore the heap.
		for _, i := range group {
			c := &m.cs[i]
			ok, err := c.next()
			if err != nil {
				return err
			}
			if ok {
				m.heap = append(m.heap, i)
				m.up(len(m.heap) - 1)
			}
		}
	}
	return nil
}

// collect pops every cursor whose entry is (bucket, dims) off the heap and
// returns their indices, in input order.
func (m *merger) collect(bucket int64, dims []byte) []int {
	group := m.grp[:0]
	for len(m.heap) > 0 {
		c := &m.cs[m.heap[0]]
		if c.bucket != bucket || !bytes.Equal(c.dims, dims) {
			break
		}
		group = append(group, m.heap[0])
		m.pop()
	}
	m.grp = group
	return group
}

func (m *merger) up(k int) {
	h := m.heap
	for k > 0 {
		p := (k - 1) / 2
		if !m.less(h[k], h[p]) {
			return
		}
		h[k], h[p] = h[p], h[k]
		k = p
	}
}

// group merges the cursors' entries after flooring their buckets to g.
func (m *merger) group(g Grain, base int64) error {
	items := m.items[:0]
	for i := range m.cs {
		c := &m.cs[i]
		for {
			ok, err := c.next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			items = append(items, mergeItem{g.Floor(c.bucket), c.dims, c.value})
		}
	}
	slices.SortStableFunc(items, func(a, b mergeItem) int {
		if c := cmp.Compare(a.bucket, b.bucket); c != 0 {
			return c
		}
		return bytes.Compare(a.dims, b.dims)
	})
	defer func() { clear(items); m.items = items[:0] }()
	for i := 0; i < len(items); {
		j := i + 1
		for j < len(items) && items[j].bucket == items[i].bucket && bytes.Equal(items[j].dims, items[i].dims) {
			j++
		}
		it := &items[i]
		rel, err := relOf(g, base, it.bucket)
		if err != nil {
			return err
		}
		if j == i+1 {
			m.body = appendEntry(m.body, rel, it.dims, it.value)
		} else {
			m.vals = m.vals[:0]
			for _, x := range items[i:j] {
				m.vals = append(m.vals, x.value)
			}
			if m.body, err = appendMerged(m.body, rel, it.dims, m.vals, &m.scratch); err != nil {
				return err
			}
		}
		m.count++
		i = j
	}
	return nil
}

// appendMerged appends the entry of the merge of encoded aggregates.
// They are merged smallest first: merging exact sketches copies both sets,
// so folding many small additions into a large hour aggregate one by one
// would copy the large set each time.
func appendMerged(dst []byte, rel int64, dims []byte, vals [][]byte, sc *scratch) ([]byte, error) {
	slices.SortStableFunc(vals, func(a, b []byte) int { return cmp.Compare(len(a), len(b)) })
	if err := sc.acc.UnmarshalFrom(vals[0]); err != nil {
		return dst, fmt.Errorf("%w: entry value: %v", ErrCorrupt, err)
	}
	for _, v := range vals[1:] {
		if err := sc.tmp.UnmarshalFrom(v); err != nil {
			return dst, fmt.Errorf("%w: entry value: %v", ErrCorrupt, err)
		}
		if err := sc.acc.MergeBuf(&sc.tmp, &sc.buf); err != nil {
			return dst, err
		}
	}
	return appendAggEntry(dst, rel, dims, &sc.acc)
}

// scratch is the memory appendMerged reuses from one entry to the next:
// the aggregate merged into, the one decoded, and the spare exact set.
type scratch struct {
	acc, tmp analytics.Aggregate
	buf      []uint64
}

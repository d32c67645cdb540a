package block

// Reader reads an encoded block in place: it parses the headers once and
// decodes a section's entries only when asked, without copying the
// block's bytes.
type Reader struct {
	data []byte
	base int64
	hs   []sectionHeader
	secs []Section
}

// Open parses and validates the block's headers. The entries are checked
// as Entries walks them. The reader aliases data, which must not change
// while it is in use.
func Open(data []byte) (*Reader, error) {
	base, hs, err := parse(data)
	if err != nil {
		return nil, err
	}
	secs := make([]Section, len(hs))
	for i := range hs {
		secs[i] = hs[i].Section
	}
	return &Reader{data: data, base: base, hs: hs, secs: secs}, nil
}

// Base is the block's period start (Unix seconds).
func (r *Reader) Base() int64 { return r.base }

// Sections lists the block's sections, in stored order. The slice is the
// reader's: do not modify it.
func (r *Reader) Sections() []Section { return r.secs }

// Count is the number of entries of section i.
func (r *Reader) Count(i int) int { return r.hs[i].count }

// Find is the index of the section equal to s, or -1.
func (r *Reader) Find(s Section) int {
	for i := range r.secs {
		if r.secs[i].Equal(s) {
			return i
		}
	}
	return -1
}

// Entries calls fn for each entry of section i, in order (bucket, then
// dims). bucket is absolute Unix seconds; value is the entry's encoded
// analytics.Aggregate (analytics.UnmarshalAggregate) and aliases the
// block. dims is a string converted from the block's bytes: one small
// allocation per entry; EntriesBytes avoids it. An error from fn stops
// the walk and is returned; so is a corrupt entry (after fn has seen the
// entries before it).
func (r *Reader) Entries(i int, fn func(bucket int64, dims string, value []byte) error) error {
	return r.EntriesBytes(i, func(bucket int64, dims, value []byte) error {
		return fn(bucket, string(dims), value)
	})
}

// EntriesBytes is Entries with dims as bytes, aliasing the block (valid
// as long as the block's bytes; copy them to keep them).
func (r *Reader) EntriesBytes(i int, fn func(bucket int64, dims, value []byte) error) error {
	c := newCursor(r.data, r.base, &r.hs[i])
	for {
		ok, err := c.next()
		if !ok {
			return err
		}
		if err := fn(c.bucket, c.dims, c.value); err != nil {
			return err
		}
	}
}

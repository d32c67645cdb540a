package projection

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// The state log: how a partition's private state, the event ids seen
// within the dedupe window (dedupe) and the visitors' sessions
// (sessionLog), is kept in the store.
//
// # Segments
//
// Both are written as segments: blob rows, each written by one checkpoint
// with every entry that checkpoint has to store, and later only ever
// deleted, never rewritten. A segment's key is its prefix and its id as 8
// big-endian bytes:
//
//	"E/" id   dedupe segment:  version byte, then per entry a 16-byte
//	          eventKey, varint receive time and varint offset, both
//	          as deltas from the previous entry of the row (the first
//	          from 0).
//	"S/" id   session segment: version byte, then per session a uvarint
//	          length and the session key (property \x1f client), a
//	          uvarint length and the encodeSession bytes.
//
// A checkpoint with more than maxSegmentBytes to write splits it into
// several segments with consecutive ids. Ids grow: a checkpoint's first
// segment gets the id its caller proposes (the offset of the first record
// applied since the previous checkpoint) or, when a segment of that id or
// later is already known (one written by a failed commit, say), the next
// free id, so that a segment is never overwritten.
//
// When a session is in several segments, the one with the highest id holds
// its latest version. A session segment is deleted once no live session
// has its latest stored version in it (counted per segment); compaction
// keeps the number of segments small by moving the live sessions of small
// or sparse segments into the checkpoint's new segment (see
// sessionLog.pickMerges). An event id is never updated but for being
// recorded again once out of the window, so when a dedupe entry is in
// several segments, the sighting with the later receive time (then offset)
// wins. A dedupe segment is deleted once all its entries are out of the
// window.
//
// # Crash safety
//
// A checkpoint's rows are not stored atomically: cqlstore writes them in
// parallel batches, and a Commit that fails may have stored any subset of
// them. The projector then rebuilds the partition from the store. So a
// checkpoint never deletes a row whose live content it is moving to a new
// row: the deletion is emitted by a later checkpoint, once the one writing
// the new row was committed. Concretely, a row is deleted only when
// everything live it holds is expired, or stored in rows that a successful
// Commit wrote (or that a load read, so are stored too):
//
//   - a session's segment moves to the new one in committed, not in
//     checkpoint, so the segments it empties are deleted by the next
//     checkpoint; prune empties segments of expired sessions only, which
//     may go at once;
//   - a dedupe segment is deleted when all its entries are expired.
//
// Whatever subset of a checkpoint reaches the store, every live session and
// every dedupe entry within the window therefore still has its committed
// row, and perhaps a newer one. Deletions lost to a crash are made up at
// the next load: segments it finds superseded or expired are deleted then.
// Segments of a failed commit are left out by the next load (they carry
// their checkpoint's end, past the committed progress) and deleted by the
// next checkpoint, whose segments get higher ids; the records they
// reflect are applied again from the committed state.
const (
	dedupeSegPrefix  = "E/"
	sessionSegPrefix = "S/"

	// segmentVersion is the first byte of every segment; a uvarint
	// follows: the end (Progress.Next) of the checkpoint that wrote it.
	segmentVersion = 2
	// maxSegmentBytes bounds a segment row (ScyllaDB warns of cells over
	// 1 MiB).
	maxSegmentBytes = 512 << 10
	// maxSessionSegments bounds the number of small session segments
	// (live content under half of maxSegmentBytes), and about that of all:
	// there are at most 2*(live bytes)/maxSegmentBytes large ones.
	maxSessionSegments = 32
	// maxMergeBytes bounds the live sessions one checkpoint moves out of
	// older segments.
	maxMergeBytes = maxSegmentBytes
	// dedupePruneSlack: the dedupe set is scanned for expired entries only
	// once some may be older than the window by window/dedupePruneSlack,
	// not at every checkpoint.
	dedupePruneSlack = 8
)

var errCorruptStateLog = errors.New("projection: corrupt state segment")

// segmentKey is the row key of segment id.
func segmentKey(prefix string, id int64) string {
	var b [10]byte
	copy(b[:2], prefix)
	binary.BigEndian.PutUint64(b[2:], uint64(id))
	return string(b[:])
}

// segmentID parses a segment key (of either prefix).
func segmentID(key string) (int64, bool) {
	if len(key) != 10 {
		return 0, false
	}
	var id uint64
	for i := 2; i < 10; i++ {
		id = id<<8 | uint64(key[i])
	}
	return int64(id), int64(id) >= 0
}

// appendSegmentHeader starts a segment written by the checkpoint ending at
// end.
func appendSegmentHeader(b []byte, end int64) []byte {
	return binary.AppendUvarint(append(b, segmentVersion), uint64(end))
}

// segmentBody splits a segment into its entries and the end of the
// checkpoint that wrote it.
func segmentBody(b []byte) (body []byte, end int64, err error) {
	if len(b) == 0 || b[0] != segmentVersion {
		return nil, 0, errors.New("unknown version")
	}
	e, n := binary.Uvarint(b[1:])
	if n <= 0 || e > 1<<62 {
		return nil, 0, errors.New("bad checkpoint end")
	}
	return b[1+n:], int64(e), nil
}

func appendDeletes(out []viewstore.KV, keys []string) []viewstore.KV {
	for _, k := range keys {
		out = append(out, viewstore.KV{Key: k, Delete: true})
	}
	return out
}

// eventKey identifies an event for deduplication: a 128-bit hash of
// property, client id and event id.
type eventKey [16]byte

// eventKeySeed seeds the second half of an eventKey. Both halves are
// stored: changing either changes the state format.
const eventKeySeed = 0x9e3779b97f4a7c15

// eventKeyOf hashes the three fields, prefixed by their lengths so that
// the concatenation is unambiguous ("a","bc" and "ab","c" differ), twice:
// with seeds 0 and eventKeySeed.
func eventKeyOf(property, client, eventID string) eventKey {
	var lens [12]byte
	binary.LittleEndian.PutUint32(lens[0:], uint32(len(property)))
	binary.LittleEndian.PutUint32(lens[4:], uint32(len(client)))
	binary.LittleEndian.PutUint32(lens[8:], uint32(len(eventID)))
	var k eventKey
	var d xxhash.Digest
	for i, seed := range [2]uint64{0, eventKeySeed} {
		d.ResetWithSeed(seed)
		_, _ = d.Write(lens[:])
		_, _ = d.WriteString(property)
		_, _ = d.WriteString(client)
		_, _ = d.WriteString(eventID)
		binary.BigEndian.PutUint64(k[8*i:], d.Sum64())
	}
	return k
}

// newer reports whether sighting a supersedes b.
func (a seenAt) newer(b seenAt) bool {
	return a.recv > b.recv || a.recv == b.recv && a.offset > b.offset
}

// dedupe is the set of event ids seen within the dedupe window, and its
// segments.
type dedupe struct {
	seen map[eventKey]seenAt
	// oldest is at most the oldest receive time in seen (when not empty).
	oldest int64
	// pending are the keys recorded since the last checkpoint, in order;
	// the first inflight of them went into the last checkpoint.
	pending  []eventKey
	inflight int
	// pruned, wm and window are the last prune's: checkpoint writes no
	// entry that prune would forget.
	pruned     bool
	wm, window int64

	stored  dedupeHeap  // committed segments, by their newest entry
	written []dedupeSeg // segments of the last checkpoint
	newest  int64       // highest segment id known, -1 for none
	deletes []string    // keys the next checkpoint deletes
}

// dedupeSeg is a stored dedupe segment: its id and its newest entry.
type dedupeSeg struct {
	id, maxRecv int64
}

func newDedupe() *dedupe {
	return &dedupe{seen: make(map[eventKey]seenAt), newest: -1}
}

// lookup returns the sighting of k. It may return one already out of the
// window (prune is lazy): callers compare its receive time with theirs.
func (d *dedupe) lookup(k eventKey) (seenAt, bool) {
	at, ok := d.seen[k]
	return at, ok
}

// record stores a new or newer sighting of k; the next checkpoint writes
// it.
func (d *dedupe) record(k eventKey, at seenAt) {
	d.note(at.recv)
	d.seen[k] = at
	d.pending = append(d.pending, k)
}

// note keeps oldest a lower bound of the receive times in seen, before an
// entry of recv is added.
func (d *dedupe) note(recv int64) {
	if len(d.seen) == 0 || recv < d.oldest {
		d.oldest = recv
	}
}

func (d *dedupe) len() int { return len(d.seen) }

// prune schedules the deletion of the stored segments whose entries are
// all older than window (seconds) at watermark, and forgets such entries.
// To spare a scan of the whole set at every checkpoint, entries are only
// forgotten once some are older than window by window/dedupePruneSlack
// (then all expired ones are): until then lookup may return expired
// entries.
func (d *dedupe) prune(watermark, window int64) {
	d.pruned, d.wm, d.window = true, watermark, window
	for len(d.stored) > 0 && watermark-d.stored[0].maxRecv > window {
		d.deletes = append(d.deletes, segmentKey(dedupeSegPrefix, d.stored.pop().id))
	}
	if len(d.seen) == 0 || watermark-d.oldest <= window+window/dedupePruneSlack {
		return
	}
	oldest, found := int64(0), false
	for k, at := range d.seen {
		switch {
		case watermark-at.recv > window:
			delete(d.seen, k)
		case !found || at.recv < oldest:
			oldest, found = at.recv, true
		}
	}
	d.oldest = oldest
}

func (d *dedupe) expired(at seenAt) bool {
	return d.pruned && d.wm-at.recv > d.window
}

// checkpoint appends the changes to store: segments holding every entry
// recorded since the last checkpoint (none when there is none), first id
// seg or higher, and the deletion of expired segments.
func (d *dedupe) checkpoint(seg, end int64, out []viewstore.KV) []viewstore.KV {
	out = appendDeletes(out, d.deletes)
	clear(d.deletes)
	d.deletes = d.deletes[:0]

	d.inflight = len(d.pending)
	w := dedupeWriter{id: max(seg, d.newest+1), end: end, hint: len(d.pending), out: out}
	for _, k := range d.pending {
		if at, ok := d.seen[k]; ok && !d.expired(at) {
			w.add(k, at)
		}
	}
	w.flush()
	d.written = w.segs
	if len(w.segs) > 0 {
		d.newest = w.id - 1
	}
	return w.out
}

// committed records that the last checkpoint was stored.
func (d *dedupe) committed() {
	for _, s := range d.written {
		d.stored.push(s)
	}
	d.written = nil
	n := copy(d.pending, d.pending[d.inflight:])
	d.pending, d.inflight = d.pending[:n], 0
	if cap(d.pending) > 1<<16 && n < cap(d.pending)/4 {
		d.pending = slices.Clip(d.pending) // after a burst
	}
}

// load takes kv when it is dedupe state: a segment.
func (d *dedupe) load(kv viewstore.KV, next int64) (bool, error) {
	switch {
	case strings.HasPrefix(kv.Key, dedupeSegPrefix):
		id, ok := segmentID(kv.Key)
		if !ok {
			return true, fmt.Errorf("%w: dedupe segment key %q", errCorruptStateLog, kv.Key)
		}
		body, end, err := segmentBody(kv.Value)
		if err != nil {
			return true, fmt.Errorf("%w: dedupe segment %d: %v", errCorruptStateLog, id, err)
		}
		if end > next {
			// Written by a checkpoint that was never committed.
			d.newest = max(d.newest, id)
			d.deletes = append(d.deletes, kv.Key)
			return true, nil
		}
		maxRecv, n, err := d.loadSegment(body)
		if err != nil {
			return true, fmt.Errorf("%w: dedupe segment %d: %v", errCorruptStateLog, id, err)
		}
		d.newest = max(d.newest, id)
		if n == 0 {
			d.deletes = append(d.deletes, kv.Key)
		} else {
			d.stored.push(dedupeSeg{id: id, maxRecv: maxRecv})
		}
	default:
		return false, nil
	}
	return true, nil
}

// loadSegment merges the entries of a segment into seen and returns their
// newest receive time and their number.
func (d *dedupe) loadSegment(b []byte) (maxRecv int64, n int, err error) {
	var recv, offset int64
	for len(b) > 0 {
		if len(b) < len(eventKey{}) {
			return 0, 0, errors.New("truncated entry")
		}
		k := eventKey(b[:len(eventKey{})])
		b = b[len(eventKey{}):]
		dr, m := binary.Varint(b)
		if m <= 0 {
			return 0, 0, errors.New("bad receive time")
		}
		b = b[m:]
		do, m := binary.Varint(b)
		if m <= 0 {
			return 0, 0, errors.New("bad offset")
		}
		b = b[m:]
		recv, offset = recv+dr, offset+do
		d.merge(k, seenAt{recv: recv, offset: offset})
		if n == 0 || recv > maxRecv {
			maxRecv = recv
		}
		n++
	}
	return maxRecv, n, nil
}

// merge adds a loaded sighting, unless seen holds a newer one.
func (d *dedupe) merge(k eventKey, at seenAt) {
	if old, ok := d.seen[k]; ok && !at.newer(old) {
		return
	}
	d.note(at.recv)
	d.seen[k] = at
}

// dedupeWriter encodes a checkpoint's dedupe segments.
type dedupeWriter struct {
	id         int64 // of the segment being written
	end        int64 // of the checkpoint
	hint       int   // entries still expected, to size buffers
	buf        []byte
	prevRecv   int64
	prevOffset int64
	maxRecv    int64
	out        []viewstore.KV // the checkpoint's changes, segments appended
	segs       []dedupeSeg
}

// maxDedupeEntry is the most bytes an entry takes.
const maxDedupeEntry = len(eventKey{}) + 2*binary.MaxVarintLen64

func (w *dedupeWriter) add(k eventKey, at seenAt) {
	if len(w.buf)+maxDedupeEntry > maxSegmentBytes {
		w.flush()
	}
	if w.buf == nil {
		w.buf = make([]byte, 0, min(maxSegmentBytes, 1+binary.MaxVarintLen64+w.hint*(len(k)+6)))
		w.buf = appendSegmentHeader(w.buf, w.end)
		w.prevRecv, w.prevOffset, w.maxRecv = 0, 0, at.recv
	}
	w.hint--
	w.buf = append(w.buf, k[:]...)
	w.buf = binary.AppendVarint(w.buf, at.recv-w.prevRecv)
	w.buf = binary.AppendVarint(w.buf, at.offset-w.prevOffset)
	w.prevRecv, w.prevOffset = at.recv, at.offset
	w.maxRecv = max(w.maxRecv, at.recv)
}

func (w *dedupeWriter) flush() {
	if w.buf == nil {
		return
	}
	w.out = append(w.out, viewstore.KV{Key: segmentKey(dedupeSegPrefix, w.id), Value: w.buf})
	w.segs = append(w.segs, dedupeSeg{id: w.id, maxRecv: w.maxRecv})
	w.id++
	w.buf = nil
}

// dedupeHeap is a min-heap of segments by maxRecv.
type dedupeHeap []dedupeSeg

func (h *dedupeHeap) push(s dedupeSeg) {
	*h = append(*h, s)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if a[p].maxRecv <= a[i].maxRecv {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *dedupeHeap) pop() dedupeSeg {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a = a[:last]
	for i := 0; ; {
		c := 2*i + 1
		if c >= len(a) {
			break
		}
		if c+1 < len(a) && a[c+1].maxRecv < a[c].maxRecv {
			c++
		}
		if a[i].maxRecv <= a[c].maxRecv {
			break
		}
		a[i], a[c] = a[c], a[i]
		i = c
	}
	*h = a
	return top
}

// sessionLog holds the sessions of a partition and their segments.
type sessionLog struct {
	m map[string]*sessionEntry
	// oldest is at most the oldest lastRecv in m (when not empty).
	oldest  int64
	dirty   []*sessionEntry // entries to write, some since pruned
	segs    []*sessionSeg   // committed segments holding live sessions, by id
	written []*sessionSeg   // segments of the last checkpoint
	newest  int64           // highest segment id known, -1 for none
	deletes []string        // keys the next checkpoint deletes
	scratch []*sessionSeg   // for pickMerges
}

// sessionEntry is a session in memory.
type sessionEntry struct {
	key string
	s   *session
	// seg holds the latest committed version of the session; nil when
	// none (new).
	seg   *sessionSeg
	dirty bool // in sessionLog.dirty
	dead  bool // pruned: no longer in sessionLog.m
}

// sessionSeg is a committed session segment.
type sessionSeg struct {
	id int64
	// live counts the sessions whose latest committed version it holds.
	live int
	// total and bytes are its sessions and size as written.
	total, bytes int
	// members are the entries written into it: the live ones and, until
	// they are filtered out, others.
	members []*sessionEntry
}

// liveBytes estimates the bytes of its live sessions.
func (s *sessionSeg) liveBytes() int {
	if s.total == 0 {
		return 0
	}
	return s.bytes * s.live / s.total
}

func newSessionLog() *sessionLog {
	return &sessionLog{m: make(map[string]*sessionEntry), newest: -1}
}

// get returns the session of key, nil when there is none.
func (l *sessionLog) get(key string) *session {
	if e := l.m[key]; e != nil {
		return e.s
	}
	return nil
}

// put sets the session of key; the next checkpoint writes it.
func (l *sessionLog) put(key string, s *session) {
	l.markDirty(l.set(key, s))
}

// set puts s in memory under key and returns its entry.
func (l *sessionLog) set(key string, s *session) *sessionEntry {
	e := l.m[key]
	if e == nil {
		e = &sessionEntry{key: key}
		l.m[key] = e
	}
	e.s = s
	l.note(s)
	return e
}

// note keeps oldest a lower bound of the sessions' lastRecv, before s is
// added or after it changed.
func (l *sessionLog) note(s *session) {
	if len(l.m) <= 1 || s.lastRecv < l.oldest {
		l.oldest = s.lastRecv
	}
}

// touch tells that the session of key was changed in place; the next
// checkpoint writes it.
func (l *sessionLog) touch(key string) {
	if e := l.m[key]; e != nil {
		l.note(e.s)
		l.markDirty(e)
	}
}

func (l *sessionLog) markDirty(e *sessionEntry) {
	if !e.dirty {
		e.dirty = true
		l.dirty = append(l.dirty, e)
	}
}

func (l *sessionLog) len() int { return len(l.m) }

// each calls fn for every session, in no particular order.
func (l *sessionLog) each(fn func(key string, s *session)) {
	for k, e := range l.m {
		fn(k, e.s)
	}
}

// prune forgets the sessions whose last event was received more than
// retention (seconds) before watermark. Segments left without live
// sessions hold only expired ones and sessions stored again by committed
// segments: the next checkpoint deletes them.
func (l *sessionLog) prune(watermark, retention int64) {
	if len(l.m) == 0 || watermark-l.oldest <= retention {
		return
	}
	oldest, found := int64(0), false
	for k, e := range l.m {
		switch {
		case watermark-e.s.lastRecv > retention:
			delete(l.m, k)
			e.dead = true
			if e.seg != nil {
				l.release(e.seg)
			}
		case !found || e.s.lastRecv < oldest:
			oldest, found = e.s.lastRecv, true
		}
	}
	l.oldest = oldest
}

// release drops a live session of s, and s once it has none.
func (l *sessionLog) release(s *sessionSeg) {
	s.live--
	if s.live > 0 {
		return
	}
	if i := slices.Index(l.segs, s); i >= 0 {
		l.segs = slices.Delete(l.segs, i, i+1)
	}
	s.members = nil
	l.deletes = append(l.deletes, segmentKey(sessionSegPrefix, s.id))
}

// checkpoint appends the changes to store: segments, first id seg or
// higher, holding every session changed since the last checkpoint and the
// live sessions of the segments compaction picks; and the deletions of
// segments whose content is expired or committed elsewhere. Without
// changed sessions it writes no segment.
func (l *sessionLog) checkpoint(seg, end int64, out []viewstore.KV) []viewstore.KV {
	out = appendDeletes(out, l.deletes)
	clear(l.deletes)
	l.deletes = l.deletes[:0]

	w := sessionWriter{id: max(seg, l.newest+1), end: end, out: out}
	for _, e := range l.dirty {
		if !e.dead {
			w.add(e)
		}
	}
	if w.size > 0 {
		for _, s := range l.pickMerges(w.size) {
			for _, e := range s.members {
				if e.seg == s && !e.dead && !e.dirty {
					e.dirty = true
					w.add(e)
				}
			}
		}
	}
	w.flush()
	for _, s := range w.segs {
		for _, e := range s.members {
			e.dirty = false
		}
	}
	clear(l.dirty)
	l.dirty = l.dirty[:0]
	l.written = w.segs
	if len(w.segs) > 0 {
		l.newest = w.id - 1
	}
	return w.out
}

// pickMerges picks the segments whose live sessions the checkpoint moves
// into its new segment, which holds size bytes of changed sessions. Every
// segment whose live bytes are at most those of the new segment (as it
// grows with what it absorbs) is merged, cheapest first, like the carries
// of a binary counter: segments end up with geometrically growing sizes, a
// session is moved about log2(maxMergeBytes/size) times before it sits in
// a large segment, and a segment left sparse by superseded or expired
// sessions is soon cheap enough to be merged. When there are more than
// maxSessionSegments small segments all the same, the cheapest are merged
// too. A checkpoint moves at most maxMergeBytes.
func (l *sessionLog) pickMerges(size int) []*sessionSeg {
	cands := append(l.scratch[:0], l.segs...)
	slices.SortFunc(cands, func(a, b *sessionSeg) int { return cmp.Compare(a.liveBytes(), b.liveBytes()) })
	small := 0
	for _, s := range cands {
		if s.liveBytes() < maxSegmentBytes/2 {
			small++
		}
	}
	acc, moved, n := size, 0, 0
	for _, s := range cands {
		lb := s.liveBytes()
		isSmall := lb < maxSegmentBytes/2
		if lb > acc && !(isSmall && small+1 > maxSessionSegments) || moved+lb > maxMergeBytes {
			break
		}
		acc, moved = acc+lb, moved+lb
		if isSmall {
			small--
		}
		n++
	}
	clear(cands[n:])
	l.scratch = cands[:0]
	return cands[:n]
}

// committed records that the last checkpoint was stored: its sessions'
// latest versions are in its segments now, and the segments they leave
// empty are deleted by the next checkpoint.
func (l *sessionLog) committed() {
	for _, s := range l.written {
		for _, e := range s.members {
			if e.dead {
				continue
			}
			if e.seg != nil {
				l.release(e.seg)
			}
			e.seg = s
			s.live++
		}
		if s.live == 0 {
			l.deletes = append(l.deletes, segmentKey(sessionSegPrefix, s.id))
			continue
		}
		l.segs = append(l.segs, s)
	}
	l.written = nil
	// Forget the members that moved on or died, to bound the memory they
	// hold.
	for _, s := range l.segs {
		if len(s.members) > 2*s.live+16 {
			live := s.members[:0]
			for _, e := range s.members {
				if e.seg == s && !e.dead {
					live = append(live, e)
				}
			}
			clear(s.members[len(live):])
			s.members = slices.Clip(live)
		}
	}
}

// load takes the session state among all the state of a partition: its
// segments, in any order, applied in id order. It returns the other entries, in kvs' backing array (kvs is
// overwritten). Segments found without live sessions are deleted by the
// next checkpoint. A session pruned before may be loaded again from an
// older segment, with the lastRecv it had then: the next prune drops it
// again.
func (l *sessionLog) load(kvs []viewstore.KV, next int64) (rest []viewstore.KV, err error) {
	type segKV struct {
		id    int64
		body  []byte
		bytes int
	}
	var segs []segKV
	rest = kvs[:0]
	for _, kv := range kvs {
		switch {
		case strings.HasPrefix(kv.Key, sessionSegPrefix):
			id, ok := segmentID(kv.Key)
			if !ok {
				return nil, fmt.Errorf("%w: session segment key %q", errCorruptStateLog, kv.Key)
			}
			body, end, err := segmentBody(kv.Value)
			if err != nil {
				return nil, fmt.Errorf("%w: session segment %d: %v", errCorruptStateLog, id, err)
			}
			if end > next {
				// Written by a checkpoint that was never committed.
				l.newest = max(l.newest, id)
				l.deletes = append(l.deletes, kv.Key)
				continue
			}
			segs = append(segs, segKV{id, body, len(kv.Value)})
		default:
			rest = append(rest, kv)
		}
	}
	clear(kvs[len(rest):])
	slices.SortFunc(segs, func(a, b segKV) int { return cmp.Compare(a.id, b.id) })
	loaded := make([]*sessionSeg, 0, len(segs))
	for _, sk := range segs {
		s, err := l.loadSegment(sk.id, sk.body, sk.bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: session segment %d: %v", errCorruptStateLog, sk.id, err)
		}
		loaded = append(loaded, s)
		l.newest = max(l.newest, sk.id)
	}
	for _, s := range loaded {
		if s.live == 0 {
			s.members = nil
			l.deletes = append(l.deletes, segmentKey(sessionSegPrefix, s.id))
			continue
		}
		l.segs = append(l.segs, s)
	}
	return rest, nil
}

// loadSegment applies a segment over the sessions loaded so far.
func (l *sessionLog) loadSegment(id int64, b []byte, size int) (*sessionSeg, error) {
	seg := &sessionSeg{id: id, bytes: size}
	for len(b) > 0 {
		key, rest, ok := cutBytes(b)
		if !ok {
			return nil, errors.New("truncated key")
		}
		val, rest, ok := cutBytes(rest)
		if !ok {
			return nil, errors.New("truncated session")
		}
		b = rest
		s, err := decodeSession(val)
		if err != nil {
			return nil, err
		}
		e := l.m[string(key)]
		if e == nil {
			e = &sessionEntry{key: string(key)}
			l.m[e.key] = e
		} else if e.seg != nil {
			e.seg.live--
		}
		e.s, e.seg = s, seg
		l.note(s)
		seg.live++
		seg.total++
		seg.members = append(seg.members, e)
	}
	return seg, nil
}

// cutBytes splits a uvarint-length-prefixed field off b.
func cutBytes(b []byte) (field, rest []byte, ok bool) {
	n, m := binary.Uvarint(b)
	if m <= 0 || n > uint64(len(b)-m) {
		return nil, nil, false
	}
	return b[m : m+int(n)], b[m+int(n):], true
}

// sessionWriter encodes a checkpoint's session segments.
type sessionWriter struct {
	id      int64 // of the segment being written
	end     int64 // of the checkpoint
	buf     []byte
	members []*sessionEntry
	size    int            // bytes written so far
	out     []viewstore.KV // the checkpoint's changes, segments appended
	segs    []*sessionSeg
}

func (w *sessionWriter) add(e *sessionEntry) {
	v := encodeSession(e.s)
	need := 2*binary.MaxVarintLen64 + len(e.key) + len(v)
	if w.buf != nil && len(w.buf)+need > maxSegmentBytes {
		w.flush()
	}
	if w.buf == nil {
		w.buf = appendSegmentHeader(make([]byte, 0, 4<<10), w.end)
		w.size += len(w.buf)
	}
	n := len(w.buf)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(e.key)))
	w.buf = append(w.buf, e.key...)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(v)))
	w.buf = append(w.buf, v...)
	w.size += len(w.buf) - n
	w.members = append(w.members, e)
}

func (w *sessionWriter) flush() {
	if w.buf == nil {
		return
	}
	w.out = append(w.out, viewstore.KV{Key: segmentKey(sessionSegPrefix, w.id), Value: w.buf})
	w.segs = append(w.segs, &sessionSeg{id: w.id, total: len(w.members), bytes: len(w.buf), members: w.members})
	w.id++
	w.buf, w.members = nil, nil
}

package projection

import (
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// Rules are the tunables of the traffic projection's logic. They are part of
// a projection version: changing them means replaying into a new version.
type Rules struct {
	// SessionTimeout ends a server-side session after this much inactivity
	// (GA4: 30 minutes). Used when the client sends no session id.
	SessionTimeout time.Duration
	// DedupeWindow is how long an event id is remembered, by receive time.
	DedupeWindow time.Duration
	// SessionRetention is how long a session's state is kept after its last
	// event, by receive time, for late events of the same session.
	SessionRetention time.Duration
	// NormalizePaths folds page path spellings (case, trailing slash…).
	NormalizePaths bool
	// ExcludeBots drops events of known bots (device category "bot"),
	// counting them as excluded.
	ExcludeBots bool
}

// DefaultRules are traffic/v1's.
func DefaultRules() Rules {
	return Rules{SessionTimeout: 30 * time.Minute, DedupeWindow: 24 * time.Hour, SessionRetention: 2 * time.Hour}
}

// grains are the cell widths every event is aggregated into, each with the
// rollups materialised at that width (see analytics.Rollup).
var grains = [...]struct {
	grain   viewstore.Grain
	rollups []analytics.RollupID
}{
	{viewstore.Minute, analytics.MinuteRollups},
	{viewstore.Hour, analytics.HourRollups},
}

// MinuteHorizon is how late an event may arrive (receive time minus event
// time, in seconds) and still be counted in minute cells. Minute cells are
// the realtime view; an event sent hours after it happened (an SDK's
// offline queue, an import) is counted in the hour cells only, as GA4 adds
// late events to its daily tables but not to realtime. Without it, such
// events, spread thinly over past minutes, made most of a backfill's or
// replay's cells and store rows. It depends on the event alone, so replays
// reproduce it.
const MinuteHorizon = 3600

// totalDims is the tuple of the total rollup's cells: every place empty.
var totalDims = analytics.Tuple{}.Encode()

type cellKey struct {
	property string
	grain    viewstore.Grain
	bucket   int64
	dims     string
}

// cellState is a cell in memory: its aggregate and the offset of the newest
// record reflected in it.
type cellState struct {
	agg    *analytics.Aggregate
	offset int64
	size   int // bytes, as of the last checkpoint or load (SizeHint)
}

type bucketKey struct {
	property string
	grain    viewstore.Grain
	bucket   int64
}

// session is the projection's state of a visitor's current session.
type session struct {
	id        int64 // ga_session_id semantics: start, Unix seconds
	number    int64
	source    string
	medium    string
	campaign  string
	lastEvent int64 // event time, Unix seconds
	lastRecv  int64 // receive time, Unix seconds
	pageViews int64
	engageMs  int64
	engaged   bool
	// lastOffset is the newest record applied to the session.
	lastOffset int64
}

// seenAt is the first sighting of an event id.
type seenAt struct {
	recv   int64 // receive time, Unix seconds
	offset int64 // the record's offset; -1 when unknown (older state)
}

// partition is the derived state of one log partition: everything the
// projection needs to apply the partition's next record, and what changed
// since the last checkpoint.
type partition struct {
	rules    Rules
	id       int32
	progress viewstore.Progress

	seen     *dedupe     // event key -> first sighting
	sessions *sessionLog // property \x1f client -> current session
	// segStart is the offset of the first record applied since the last
	// checkpoint (-1: none), which names the state segments it writes.
	segStart int64

	cells      map[cellKey]*cellState
	loaded     map[bucketKey]int64 // bucket -> last touch (Unix s, wall clock)
	dirtyCells map[cellKey]struct{}
	watermarks map[string]time.Time
	pending    int // records applied since the last checkpoint

	// fresh is set while every cell this partition ever committed was
	// committed by this very instance (it started with no applied event
	// committed: a new projection version being built). Then a bucket
	// outside written holds no committed contribution of the partition,
	// and loading it from the store is skipped: what a crashed earlier
	// attempt may have left there comes from records this instance applies
	// again, so it is rebuilt and overwritten. Replays skip one store read
	// per bucket and rollup this way. Past maxWritten buckets it gives up
	// and loads as usual.
	fresh   bool
	written map[bucketKey]struct{}

	// slab holds the encoded cells of the last checkpoint.
	slab []byte

	// bytes is the size of the cells in memory, bucketBytes per bucket,
	// as of the last checkpoint: what the memory budget evicts by.
	bytes       int
	bucketBytes map[bucketKey]int
	// mem is the process's cell budget (nil: none) and reported what of
	// bytes it was told.
	mem      *Memory
	reported int
}

// cellOverhead is what a cell costs in memory besides its sketches' data:
// the map entry, its key's strings, the aggregate and five sketch headers
// (measured: ~800 bytes of heap for a cell whose encoding is ~250 bytes).
const cellOverhead = 512

// maxWritten bounds the buckets a fresh partition remembers.
const maxWritten = 1 << 20

func newPartition(id int32, rules Rules, progress viewstore.Progress, state []viewstore.KV) (*partition, error) {
	p := &partition{
		rules:       rules,
		id:          id,
		progress:    progress,
		seen:        newDedupe(),
		sessions:    newSessionLog(),
		segStart:    -1,
		bucketBytes: make(map[bucketKey]int),
		cells:       make(map[cellKey]*cellState),
		loaded:      make(map[bucketKey]int64),
		dirtyCells:  make(map[cellKey]struct{}),
		watermarks:  make(map[string]time.Time),
	}
	p.progress.Partition = id
	if progress.Applied == 0 { // no committed event, so no committed cell
		p.fresh, p.written = true, make(map[bucketKey]struct{})
	}
	rest, err := p.sessions.load(state)
	if err != nil {
		return nil, err
	}
	for _, kv := range rest {
		if _, err := p.seen.load(kv); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// cellLoader reads every stored cell of one bucket.
type cellLoader func(property string, g viewstore.Grain, bucket int64, fn func(viewstore.Cell) error) error

// apply applies the event of the record at offset. It reports whether the
// event counted (false for duplicates). A cell that already reflects offset
// (stored by a commit that got further than the partition's progress) is
// left as it is.
func (p *partition) apply(ev *eventv1.Event, offset int64, load cellLoader, now time.Time) (bool, error) {
	recv := ev.GetReceiveTime().AsTime()
	recvS := recv.Unix()
	if recv.After(p.progress.Watermark) {
		p.progress.Watermark = recv
	}
	// Event ids are chosen by clients: a duplicate is the same id from the
	// same visitor of the same property.
	// A sighting at this very offset is not a duplicate: it is this record,
	// re-applied after a commit that stored the dedupe entry but not the
	// progress. Cells and sessions skip what they already hold; the
	// counters, committed with the progress, count it again.
	if p.segStart < 0 {
		p.segStart = offset
	}
	seenKey := eventKeyOf(ev.PropertyId, ev.ClientId, ev.EventId)
	if t, ok := p.seen.lookup(seenKey); ok && t.offset != offset && recvS-t.recv <= int64(p.rules.DedupeWindow/time.Second) {
		p.progress.Duplicates++
		return false, nil
	}
	p.seen.record(seenKey, seenAt{recv: recvS, offset: offset})
	if p.rules.ExcludeBots && ev.GetDevice().GetCategory() == "bot" {
		p.progress.Excluded++
		return false, nil
	}

	s := p.sessionFor(ev, recvS, offset)
	evTime := ev.GetEventTime().AsTime().Unix()

	isPageView := ev.Name == "page_view" || ev.Name == "screen_view"
	if offset > s.lastOffset { // a session already holding this record is not changed again
		s.lastOffset = offset
		if isPageView {
			s.pageViews++
		}
		s.engageMs += ev.EngagementTimeMsec
		if !s.engaged && (s.pageViews >= 2 || s.engageMs > 10_000 || engagedFlag(ev)) {
			s.engaged = true
		}
	}
	isNew := ev.Name == "first_visit" || ev.Name == "first_open"
	active := s.engaged || isNew || ev.EngagementTimeMsec > 0

	userKey := ev.UserId
	if userKey == "" {
		userKey = ev.ClientId
	}
	userHash := xxhash.Sum64String(userKey)
	sessionHash := xxhash.Sum64String(ev.ClientId + "\x1f" + strconv.FormatInt(s.id, 10))

	var t analytics.Tuple
	t[analytics.EventName] = ev.Name
	path := ev.GetPage().GetPath()
	if p.rules.NormalizePaths {
		path = normalizePath(path)
	}
	t[analytics.PagePath] = analytics.Clean(path, 1000)
	t[analytics.CountryID] = ev.Country
	t[analytics.DeviceCategory] = ev.GetDevice().GetCategory()
	t[analytics.Browser] = analytics.Clean(ev.GetDevice().GetBrowser(), 100)
	t[analytics.OperatingSystem] = analytics.Clean(ev.GetDevice().GetOperatingSystem(), 100)
	t[analytics.SessionSource] = s.source
	t[analytics.SessionMedium] = s.medium
	t[analytics.SessionCampaign] = s.campaign
	var rollupDims [analytics.NumRollups]string
	for i, r := range analytics.Rollups {
		if r == 0 {
			rollupDims[i] = totalDims
			continue
		}
		pt := r.Project(&t)
		rollupDims[i] = pt.Encode()
	}

	for _, gr := range grains {
		if gr.grain == viewstore.Minute && recvS-evTime > MinuteHorizon {
			continue // backfilled: hour cells only
		}
		w := gr.grain.Seconds()
		bucket := evTime - mod(evTime, w)
		for _, id := range gr.rollups {
			g := gr.grain.WithRollup(uint8(id))
			cs, err := p.cell(cellKey{ev.PropertyId, g, bucket, rollupDims[id]}, load, now)
			if err != nil {
				return false, err
			}
			if offset <= cs.offset {
				continue
			}
			cs.offset = offset
			agg := cs.agg
			agg.Events++
			if isPageView {
				agg.PageViews++
			}
			agg.EngagementMsec += ev.EngagementTimeMsec
			agg.Users.Add(userHash)
			agg.Sessions.Add(sessionHash)
			if isNew {
				agg.NewUsers.Add(userHash)
			}
			if active {
				agg.ActiveUsers.Add(userHash)
			}
			if s.engaged {
				agg.EngagedSess.Add(sessionHash)
			}
		}
	}
	if wm := p.watermarks[ev.PropertyId]; recv.After(wm) {
		p.watermarks[ev.PropertyId] = recv
	}
	p.progress.Applied++
	return true, nil
}

func engagedFlag(ev *eventv1.Event) bool {
	v, ok := ev.Params["session_engaged"]
	if !ok {
		return false
	}
	switch x := v.Kind.(type) {
	case *eventv1.Value_StringValue:
		return x.StringValue == "1" || x.StringValue == "true"
	case *eventv1.Value_IntValue:
		return x.IntValue == 1
	case *eventv1.Value_BoolValue:
		return x.BoolValue
	}
	return false
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// sessionFor returns the visitor's session for ev, starting a new one when
// the client's session id changed or, without one, after SessionTimeout of
// inactivity. A new session takes the event's traffic source.
func (p *partition) sessionFor(ev *eventv1.Event, recvS, offset int64) *session {
	key := ev.PropertyId + "\x1f" + ev.ClientId
	evTime := ev.GetEventTime().AsTime().Unix()
	s := p.sessions.get(key)
	fresh := false
	switch {
	case s == nil:
		fresh = true
	case ev.SessionId != 0:
		fresh = ev.SessionId != s.id
	default:
		fresh = evTime-s.lastEvent > int64(p.rules.SessionTimeout/time.Second)
	}
	if fresh {
		ns := &session{id: ev.SessionId, number: ev.SessionNumber, lastOffset: -1}
		if ns.id == 0 {
			ns.id = evTime
		}
		if ns.number == 0 {
			ns.number = 1
			if s != nil {
				ns.number = s.number + 1
			}
		}
		ts := ev.GetTrafficSource()
		ns.source, ns.medium, ns.campaign = ts.GetSource(), ts.GetMedium(), ts.GetCampaign()
		if ns.source == "" {
			ns.source, ns.medium = "(direct)", "(none)"
		}
		s = ns
		p.sessions.put(key, s)
	}
	if evTime > s.lastEvent {
		s.lastEvent = evTime
	}
	// The newest receive time, not the last: a late record must not make a
	// live session look older than an earlier stored version of it.
	s.lastRecv = max(s.lastRecv, recvS)
	p.sessions.touch(key)
	return s
}

// cell returns the in-memory aggregate of k, loading its bucket's stored
// cells of this partition first when the bucket is not in memory.
func (p *partition) cell(k cellKey, load cellLoader, now time.Time) (*cellState, error) {
	bk := bucketKey{k.property, k.grain, k.bucket}
	if _, ok := p.loaded[bk]; !ok && p.mayHoldStored(bk) {
		err := load(k.property, k.grain, k.bucket, func(c viewstore.Cell) error {
			if c.Partition != p.id || c.Bucket != k.bucket {
				return nil
			}
			agg, err := analytics.UnmarshalAggregate(c.Value)
			if err != nil {
				return err
			}
			n := len(c.Value) + cellOverhead
			p.cells[cellKey{c.Property, c.Grain, c.Bucket, c.Dims}] = &cellState{agg: agg, offset: c.Offset, size: n}
			p.bytes += n
			p.bucketBytes[bk] += n
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	p.loaded[bk] = now.Unix()
	cs, ok := p.cells[k]
	if !ok {
		cs = &cellState{agg: analytics.NewAggregate(), offset: -1}
		p.cells[k] = cs
	}
	p.dirtyCells[k] = struct{}{}
	return cs, nil
}

// mayHoldStored reports whether the store may hold committed cells of bk
// for this partition (see fresh).
func (p *partition) mayHoldStored(bk bucketKey) bool {
	if !p.fresh {
		return true
	}
	_, ok := p.written[bk]
	return ok
}

// checkpoint collects what changed since the last one. The caller commits
// it and then calls committed.
func (p *partition) checkpoint() (viewstore.Checkpoint, error) {
	cp := viewstore.Checkpoint{Progress: p.progress}
	cp.Cells = make([]viewstore.Cell, 0, len(p.dirtyCells))
	// Encode every cell into one slab, sized first, reused from the last
	// checkpoint (whose commit is over: the stores copy what they write).
	size := 0
	for k := range p.dirtyCells {
		cs := p.cells[k]
		n := cs.agg.SizeHint()
		size += n
		n += cellOverhead
		p.bytes += n - cs.size
		p.bucketBytes[bucketKey{k.property, k.grain, k.bucket}] += n - cs.size
		cs.size = n
	}
	slab := p.slab[:0]
	if cap(slab) < size {
		slab = make([]byte, 0, size+size/4)
	}
	for k := range p.dirtyCells {
		cs := p.cells[k]
		start := len(slab)
		var err error
		if slab, err = cs.agg.AppendBinary(slab); err != nil {
			return cp, err
		}
		cp.Cells = append(cp.Cells, viewstore.Cell{Property: k.property, Grain: k.grain, Bucket: k.bucket, Dims: k.dims, Partition: p.id, Value: slab[start:len(slab):len(slab)], Offset: cs.offset})
	}
	p.slab = slab
	p.prune()
	seg := p.segStart
	if seg < 0 {
		seg = p.progress.Next
	}
	cp.State = p.seen.checkpoint(seg, nil)
	cp.State = p.sessions.checkpoint(seg, cp.State)
	for prop, t := range p.watermarks {
		cp.Watermarks = append(cp.Watermarks, viewstore.Watermark{Property: prop, Partition: p.id, Time: t, Offset: p.progress.Next})
	}
	return cp, nil
}

// prune forgets event ids and sessions that can no longer matter, measured
// against the partition's receive-time watermark, so that the decision is a
// function of the log alone.
func (p *partition) prune() {
	wm := p.progress.Watermark.Unix()
	p.seen.prune(wm, int64(p.rules.DedupeWindow/time.Second))
	p.sessions.prune(wm, int64(p.rules.SessionRetention/time.Second))
}

// committed clears the change sets after a successful commit and evicts
// buckets untouched for idle, whose cells are all stored, and then, while
// the process's cells exceed the memory budget (see Memory), the buckets
// touched longest ago. An evicted bucket is read from the store again when
// an event needs it.
func (p *partition) committed(now time.Time, idle time.Duration) {
	if p.fresh {
		for k := range p.dirtyCells {
			p.written[bucketKey{k.property, k.grain, k.bucket}] = struct{}{}
		}
		if len(p.written) > maxWritten {
			p.fresh, p.written = false, nil
		}
	}
	clear(p.dirtyCells)
	p.seen.committed()
	p.sessions.committed()
	p.segStart = -1
	clear(p.watermarks)
	p.pending = 0
	p.evict(now, idle)
}

// evict drops the buckets untouched for idle and, while the process's
// cells exceed the memory budget, the ones touched longest ago. Every cell
// must be committed (nothing applied since the last commit).
func (p *partition) evict(now time.Time, idle time.Duration) {
	cut := now.Add(-idle).Unix()
	evict := false
	for bk, t := range p.loaded {
		if t < cut {
			p.evictBucket(bk)
			evict = true
		}
	}
	p.report()
	if target := p.mem.target(); target >= 0 && int64(p.bytes) > target {
		type touched struct {
			bk bucketKey
			at int64
		}
		order := make([]touched, 0, len(p.loaded))
		for bk, t := range p.loaded {
			order = append(order, touched{bk, t})
		}
		// Oldest first; within a second, larger buckets first.
		slices.SortFunc(order, func(a, b touched) int {
			if c := cmp.Compare(a.at, b.at); c != 0 {
				return c
			}
			return cmp.Compare(p.bucketBytes[b.bk], p.bucketBytes[a.bk])
		})
		for _, o := range order {
			if int64(p.bytes) <= target {
				break
			}
			p.evictBucket(o.bk)
			evict = true
		}
		p.report()
	}
	if evict {
		for k := range p.cells {
			if _, ok := p.loaded[bucketKey{k.property, k.grain, k.bucket}]; !ok {
				delete(p.cells, k)
			}
		}
	}
}

// report tells the memory budget how many bytes the cells take now.
func (p *partition) report() {
	if p.mem != nil {
		p.mem.add(int64(p.bytes - p.reported))
		p.reported = p.bytes
	}
}

// release gives the partition's cells back to the budget when it stops.
func (p *partition) release() {
	if p.mem != nil {
		p.mem.leave(int64(p.reported))
		p.mem, p.reported = nil, 0
	}
}

// evictBucket forgets that a bucket is in memory; committed then drops its
// cells.
func (p *partition) evictBucket(bk bucketKey) {
	delete(p.loaded, bk)
	p.bytes -= p.bucketBytes[bk]
	delete(p.bucketBytes, bk)
}

func encodeSession(s *session) []byte {
	b := make([]byte, 0, 64)
	for _, v := range []int64{s.id, s.number, s.lastEvent, s.lastRecv, s.pageViews, s.engageMs, s.lastOffset} {
		b = binary.AppendVarint(b, v)
	}
	if s.engaged {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	for _, str := range []string{s.source, s.medium, s.campaign} {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	return b
}

var errCorruptSession = errors.New("projection: corrupt session state")

func decodeSession(b []byte) (*session, error) {
	s := &session{}
	for _, v := range []*int64{&s.id, &s.number, &s.lastEvent, &s.lastRecv, &s.pageViews, &s.engageMs, &s.lastOffset} {
		x, n := binary.Varint(b)
		if n <= 0 {
			return nil, errCorruptSession
		}
		*v, b = x, b[n:]
	}
	if len(b) < 1 {
		return nil, errCorruptSession
	}
	s.engaged, b = b[0] == 1, b[1:]
	for _, str := range []*string{&s.source, &s.medium, &s.campaign} {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return nil, errCorruptSession
		}
		*str, b = string(b[n:n+int(l)]), b[n+int(l):]
	}
	return s, nil
}

package projection

import (
	"time"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/block"
	"github.com/sextant-analytics/sextant/pkg/seal"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// partition applies one log partition's records: the logic (deriver)
// turns each event and its session into aggregates, the state remembers
// sessions and event ids, and the open additions collect the aggregates
// until the next checkpoint.
type partition struct {
	id       int32
	logic    *deriver
	progress viewstore.Progress
	// start is the first offset of the open checkpoint's range: the Next
	// of the last committed checkpoint.
	start int64
	// mustEnd, when above Next, is the end of a checkpoint that was being
	// written when the partition last stopped (Progress.Intent): the next
	// checkpoint must end exactly there, so that it rewrites the same
	// additions.
	mustEnd int64

	state      *state
	adds       *additions
	watermarks map[string]time.Time
	pending    int // records applied since the last checkpoint

	vals []string // scratch: an event's dimension values
	key  []byte   // scratch: an entry's dimension key
}

func newPartition(id int32, logic *deriver, progress viewstore.Progress, kvs []viewstore.KV) (*partition, error) {
	st, err := newState(kvs, progress.Next)
	if err != nil {
		return nil, err
	}
	p := &partition{
		id:         id,
		logic:      logic,
		progress:   progress,
		start:      progress.Next,
		state:      st,
		adds:       newAdditions(logic.layout),
		watermarks: make(map[string]time.Time),
		vals:       make([]string, len(logic.dims)),
	}
	p.progress.Partition = id
	if progress.Intent > progress.Next {
		p.mustEnd = progress.Intent
	}
	p.progress.Intent = 0
	return p, nil
}

// apply applies the index-th event of the record at offset. It reports
// whether the event counted (false for duplicates and excluded events).
//
// Sessions and event ids remember where they last changed by the event's
// position, offset << seal.PositionBits | index, which orders the events of
// a record (one visitor's batch) after those of earlier records: a
// position from before records held several events, an offset, is
// smaller than every position of a later record.
func (p *partition) apply(ev *eventv1.Event, offset int64, index int) bool {
	pos := offset<<seal.PositionBits | int64(index)
	recv := ev.GetReceiveTime().AsTime()
	recvS := recv.Unix()
	if recv.After(p.progress.Watermark) {
		p.progress.Watermark = recv
	}
	p.state.begin(offset)
	// Event ids are chosen by clients: a duplicate is the same id from the
	// same visitor of the same property.
	if p.state.duplicate(ev.PropertyId, ev.ClientId, ev.EventId, recvS, pos, p.logic.rules.dedupeSeconds()) {
		p.progress.Duplicates++
		return false
	}
	if p.logic.rules.ExcludeBots && ev.GetDevice().GetCategory() == "bot" {
		p.progress.Excluded++
		return false
	}
	evTime := ev.GetEventTime().AsTime().Unix()
	s := p.logic.session(p.state.sessions, ev, evTime, recvS, pos)
	f := p.logic.facts(ev, s, evTime, recvS, pos)
	b := p.adds.builder(ev.PropertyId, block.Hour.Floor(evTime))
	before := b.Entries()
	p.key = p.logic.add(b, ev, s, &f, p.vals, p.key)
	p.adds.n += b.Entries() - before
	if wm := p.watermarks[ev.PropertyId]; recv.After(wm) {
		p.watermarks[ev.PropertyId] = recv
	}
	p.progress.Applied++
	return true
}

// advance records that the record at offset was handled.
func (p *partition) advance(offset int64) {
	p.progress.Next = offset + 1
	p.pending++
}

// limit is the most records the partition may read before its next
// checkpoint (0: no limit): a partition rewriting an interrupted
// checkpoint reads up to its end and no further.
func (p *partition) limit() int64 {
	if p.mustEnd > p.progress.Next {
		return p.mustEnd - p.progress.Next
	}
	return 0
}

// mayCheckpoint reports whether a checkpoint may end at the partition's
// next offset.
func (p *partition) mayCheckpoint() bool {
	// Ending past it is as good: the checkpoint has the same start, so the
	// same keys, and every record the interrupted one held.
	return p.pending > 0 && p.progress.Next >= p.mustEnd
}

// checkpoint collects what changed since the last one. The caller commits
// it and then calls committed.
func (p *partition) checkpoint() (viewstore.Checkpoint, error) {
	cp := viewstore.Checkpoint{Progress: p.progress}
	adds, err := p.adds.encode(p.id, p.start, p.progress.Next)
	if err != nil {
		return cp, err
	}
	cp.Additions = adds
	p.state.prune(p.progress.Watermark.Unix(), p.logic.rules)
	cp.State = p.state.checkpoint(p.progress.Next, nil)
	for prop, t := range p.watermarks {
		cp.Watermarks = append(cp.Watermarks, viewstore.Watermark{Property: prop, Partition: p.id, Time: t, Offset: p.progress.Next})
	}
	return cp, nil
}

// committed records that the last checkpoint was stored.
func (p *partition) committed() {
	p.state.committed()
	clear(p.watermarks)
	p.start = p.progress.Next
	p.mustEnd = 0
	p.pending = 0
}

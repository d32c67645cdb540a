package projection

import (
	"encoding/binary"
	"errors"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// state is a log partition's private state: the event ids seen within the
// dedupe window and the visitors' sessions, kept in memory and written to
// the store as segments (statelog.go). Its size is bounded by time
// windows (Rules.DedupeWindow, Rules.SessionRetention), not by history.
type state struct {
	seen     *dedupe     // event key -> first sighting
	sessions *sessionLog // property \x1f client -> current session
	// segStart is the offset of the first record applied since the last
	// checkpoint (-1: none), which names the state segments it writes.
	segStart int64
	// deletes are the deletions the last checkpoint decided, which the
	// next one writes (see checkpoint); deciding are this checkpoint's.
	deletes, deciding []viewstore.KV
}

// session is the state of a visitor's current session.
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
	// landing is the path and query string of the session's first page
	// (the first of its events with a page), "" until then.
	landing string
	// The user's first traffic source (traffic/v5 on: kept only when the
	// layout stores it), carried from session to session of a client
	// while its state lives; bought is the offset (plus one) of the
	// user's first purchase record, 0 before it.
	firstSource, firstMedium, firstCampaign string
	bought                                  int64
	// ext is how many seconds the event applied last extended the
	// session by (not stored: facts reads it right after session).
	ext int64
	// lastOffset is the newest record applied to the session.
	lastOffset int64
}

// seenAt is the first sighting of an event id.
type seenAt struct {
	recv   int64 // receive time, Unix seconds
	offset int64 // the record's offset
}

// newState loads the state entries of a partition whose committed
// progress is next. Segments of a checkpoint that was never committed
// (one that failed after writing them) are left out, and deleted by the
// next checkpoint: the records they reflect are applied again from the
// committed state, so that the checkpoint rewriting the failed one derives
// exactly what it did.
func newState(kvs []viewstore.KV, next int64) (*state, error) {
	s := &state{seen: newDedupe(), sessions: newSessionLog(), segStart: -1}
	rest, err := s.sessions.load(kvs, next)
	if err != nil {
		return nil, err
	}
	for _, kv := range rest {
		if _, err := s.seen.load(kv, next); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// begin notes that the record at offset is being applied.
func (s *state) begin(offset int64) {
	if s.segStart < 0 {
		s.segStart = offset
	}
}

// duplicate reports whether the event (property, client, event id) was
// seen within window seconds before recv, and otherwise records it.
func (s *state) duplicate(property, client, eventID string, recv, offset, window int64) bool {
	k := eventKeyOf(property, client, eventID)
	if t, ok := s.seen.lookup(k); ok && recv-t.recv <= window {
		return true
	}
	s.seen.record(k, seenAt{recv: recv, offset: offset})
	return false
}

// checkpoint returns the state entries to store; next is the partition's
// next offset, naming the segments when nothing was applied.
//
// The segments it deletes are those the previous checkpoint decided to
// delete; its own decisions wait for the next one. A checkpoint decides
// what expired by the watermark of the records it holds, and should it
// fail, the partition applies those records again from the previous
// checkpoint's state, which still needs what expired since: a deletion
// written by the failed checkpoint would be lost to it.
func (s *state) checkpoint(next int64, out []viewstore.KV) []viewstore.KV {
	seg := s.segStart
	if seg < 0 {
		seg = next
	}
	kvs := s.seen.checkpoint(seg, next, nil)
	kvs = s.sessions.checkpoint(seg, next, kvs)
	out = append(out, s.deletes...)
	s.deciding = s.deciding[:0]
	for _, kv := range kvs {
		if kv.Delete {
			s.deciding = append(s.deciding, kv)
		} else {
			out = append(out, kv)
		}
	}
	return out
}

// committed records that the last checkpoint was stored.
func (s *state) committed() {
	s.seen.committed()
	s.sessions.committed()
	s.segStart = -1
	s.deletes, s.deciding = append(s.deletes[:0], s.deciding...), s.deciding[:0]
}

// prune forgets event ids and sessions that can no longer matter, measured
// against the partition's receive-time watermark (seconds), so that the
// decision is a function of the log alone.
func (s *state) prune(watermark int64, rules Rules) {
	s.seen.prune(watermark, rules.dedupeSeconds())
	s.sessions.prune(watermark, rules.retentionSeconds())
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
	for _, str := range []string{s.source, s.medium, s.campaign, s.landing} {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	if s.bought == 0 && s.firstSource == "" && s.firstMedium == "" && s.firstCampaign == "" {
		return b // as sessions were stored before traffic/v5
	}
	b = binary.AppendVarint(b, s.bought)
	for _, str := range []string{s.firstSource, s.firstMedium, s.firstCampaign} {
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
	for i, str := range []*string{&s.source, &s.medium, &s.campaign, &s.landing} {
		if i == 3 && len(b) == 0 {
			break // a session stored before landing pages were kept
		}
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return nil, errCorruptSession
		}
		*str, b = string(b[n:n+int(l)]), b[n+int(l):]
	}
	if len(b) == 0 {
		return s, nil // stored before traffic/v5
	}
	x, n := binary.Varint(b)
	if n <= 0 || x < 0 {
		return nil, errCorruptSession
	}
	s.bought, b = x, b[n:]
	for _, str := range []*string{&s.firstSource, &s.firstMedium, &s.firstCampaign} {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return nil, errCorruptSession
		}
		*str, b = string(b[n:n+int(l)]), b[n+int(l):]
	}
	if len(b) != 0 {
		return nil, errCorruptSession
	}
	return s, nil
}

package projection

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// memState is the state rows of one partition in a store.
type memState map[string][]byte

// apply stores the KVs for which keep is true (all with keep nil), like a
// commit, or like a commit that failed half way.
func (m memState) apply(kvs []viewstore.KV, keep func(viewstore.KV) bool) {
	for _, kv := range kvs {
		switch {
		case keep != nil && !keep(kv):
		case kv.Delete:
			delete(m, kv.Key)
		default:
			m[kv.Key] = kv.Value
		}
	}
}

// rows returns the rows as LoadPartition does, in random order.
func (m memState) rows(rng *rand.Rand) []viewstore.KV {
	kvs := make([]viewstore.KV, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		kvs = append(kvs, viewstore.KV{Key: k, Value: m[k]})
	}
	rng.Shuffle(len(kvs), func(i, j int) { kvs[i], kvs[j] = kvs[j], kvs[i] })
	return kvs
}

func (m memState) count(prefix string) int {
	n := 0
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

func loadDedupeFrom(t testing.TB, m memState, rng *rand.Rand) *dedupe {
	t.Helper()
	d := newDedupe()
	for _, kv := range m.rows(rng) {
		if ok, err := d.load(kv, noEnd); err != nil || !ok {
			t.Fatalf("load %q: %v %v", kv.Key, ok, err)
		}
	}
	return d
}

func loadSessionLogFrom(t testing.TB, m memState, rng *rand.Rand) *sessionLog {
	t.Helper()
	l := newSessionLog()
	rest, err := l.load(m.rows(rng), noEnd)
	if err != nil || len(rest) != 0 {
		t.Fatalf("load: %v, %d rows left", err, len(rest))
	}
	return l
}

func sessionsOf(l *sessionLog) map[string]session {
	out := make(map[string]session, l.len())
	l.each(func(k string, s *session) { out[k] = *s })
	return out
}

func keysOf(kvs []viewstore.KV, deleted bool, prefix string) []string {
	var out []string
	for _, kv := range kvs {
		if kv.Delete == deleted && strings.HasPrefix(kv.Key, prefix) {
			out = append(out, kv.Key)
		}
	}
	slices.Sort(out)
	return out
}

func TestEventKeyOf(t *testing.T) {
	for _, c := range []struct{ a, b [3]string }{
		{[3]string{"a", "bc", "d"}, [3]string{"ab", "c", "d"}},
		{[3]string{"a", "b", "cd"}, [3]string{"a", "bc", "d"}},
		{[3]string{"", "a", "b"}, [3]string{"a", "", "b"}},
		{[3]string{"a\x1fb", "c", "d"}, [3]string{"a", "b\x1fc", "d"}},
		{[3]string{"p", "c", "e"}, [3]string{"p", "c", "e "}},
		{[3]string{"", "", ""}, [3]string{"", "", "\x00"}},
		{[3]string{"p", "c", "e"}, [3]string{"c", "p", "e"}},
	} {
		ka, kb := eventKeyOf(c.a[0], c.a[1], c.a[2]), eventKeyOf(c.b[0], c.b[1], c.b[2])
		if ka == kb {
			t.Errorf("%q and %q hash alike", c.a, c.b)
		}
		if ka != eventKeyOf(c.a[0], c.a[1], c.a[2]) {
			t.Errorf("%q: unstable", c.a)
		}
	}
	// The keys are stored: the function must not change.
	k := eventKeyOf("p1", "c1", "e1")
	if got, want := hex.EncodeToString(k[:]), "d3103ec5163d3caff703a1c79328d300"; got != want {
		t.Errorf("eventKeyOf(p1, c1, e1) = %s, want %s: a change makes stored dedupe state unreadable", got, want)
	}
	if [8]byte(k[:8]) == [8]byte(k[8:]) {
		t.Error("both halves alike")
	}
	if n := testing.AllocsPerRun(100, func() { k = eventKeyOf("property", "client-1234567890", "event-id-1234567890abcdef") }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// commitDedupe runs a checkpoint of d into m, as the runner does: prune,
// checkpoint, commit, committed.
func commitDedupe(d *dedupe, m memState, seg, wm, window int64) []viewstore.KV {
	d.prune(wm, window)
	cp := d.checkpoint(seg, 0, nil)
	m.apply(cp, nil)
	d.committed()
	return cp
}

func TestDedupeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const window = 1000
	d, m := newDedupe(), memState{}
	keys := map[eventKey]bool{}
	var offset int64
	for round := range 3 {
		seg := offset
		for range 100 {
			k := eventKeyOf("p", strconv.Itoa(rng.Intn(20)), strconv.FormatInt(offset, 10))
			if _, ok := d.lookup(k); ok {
				t.Fatal("new key found")
			}
			d.record(k, seenAt{recv: 500 + offset, offset: offset})
			keys[k] = true
			offset++
		}
		// A record seen again (re-applied) is written again, harmlessly.
		d.record(eventKeyOf("p", "x", "again"), seenAt{recv: 500, offset: 3})
		d.record(eventKeyOf("p", "x", "again"), seenAt{recv: 500, offset: 3})
		cp := commitDedupe(d, m, seg, 500+offset, window)
		if got, want := keysOf(cp, false, dedupeSegPrefix), []string{segmentKey(dedupeSegPrefix, seg)}; !slices.Equal(got, want) {
			t.Fatalf("round %d wrote %q, want %q", round, got, want)
		}
		if len(cp) != 1 {
			t.Fatalf("round %d: %d changes", round, len(cp))
		}
	}
	if d.len() != len(keys)+1 {
		t.Fatalf("len %d, want %d", d.len(), len(keys)+1)
	}
	// Nothing recorded: nothing written.
	if cp := commitDedupe(d, m, offset, 500+offset, window); len(cp) != 0 {
		t.Fatalf("empty checkpoint wrote %v", cp)
	}
	r := loadDedupeFrom(t, m, rng)
	if !maps.Equal(r.seen, d.seen) {
		t.Fatalf("reloaded %d entries, had %d", len(r.seen), len(d.seen))
	}
	// A proposed id at or below a known one is moved past it.
	r.record(eventKeyOf("p", "c", "late"), seenAt{recv: 2000, offset: 7})
	cp := r.checkpoint(100, 0, nil)
	if got, want := keysOf(cp, false, dedupeSegPrefix), []string{segmentKey(dedupeSegPrefix, 201)}; !slices.Equal(got, want) {
		t.Fatalf("wrote %q, want %q", got, want)
	}
}

func TestDedupeLargeCheckpoint(t *testing.T) {
	d, m := newDedupe(), memState{}
	const n = 60_000
	for i := range n {
		d.record(eventKeyOf("p", "c", strconv.Itoa(i)), seenAt{recv: 1e9 + int64(i/100), offset: int64(i)})
	}
	cp := commitDedupe(d, m, 7, 1e9, 86400)
	if len(cp) < 2 {
		t.Fatalf("%d rows for %d entries", len(cp), n)
	}
	for i, kv := range cp {
		if kv.Key != segmentKey(dedupeSegPrefix, 7+int64(i)) || len(kv.Value) > maxSegmentBytes {
			t.Fatalf("row %d: %q of %d bytes", i, kv.Key, len(kv.Value))
		}
	}
	size := 0
	for _, kv := range cp {
		size += len(kv.Value)
	}
	if perEntry := float64(size) / n; perEntry > 19 {
		t.Errorf("%.1f bytes per entry", perEntry)
	}
	r := loadDedupeFrom(t, m, rand.New(rand.NewSource(2)))
	if !maps.Equal(r.seen, d.seen) || len(r.seen) != n {
		t.Fatalf("reloaded %d entries of %d", len(r.seen), n)
	}
}

func TestDedupePrune(t *testing.T) {
	const window = 800 // a slack of 100
	k := func(i int) eventKey { return eventKeyOf("p", "c", strconv.Itoa(i)) }
	d, m := newDedupe(), memState{}
	d.record(k(0), seenAt{recv: 0, offset: 0})
	d.record(k(1), seenAt{recv: 150, offset: 1})
	commitDedupe(d, m, 0, 150, window)
	d.record(k(2), seenAt{recv: 220, offset: 2})
	commitDedupe(d, m, 2, 220, window)
	seg0, seg2 := segmentKey(dedupeSegPrefix, 0), segmentKey(dedupeSegPrefix, 2)

	for _, step := range []struct {
		wm          int64
		present     []int
		deleted     []string
		storedAfter []string
	}{
		// k0 expired, but within the slack: still there. Its segment
		// holds k1, not expired.
		{wm: 850, present: []int{0, 1, 2}, storedAfter: []string{seg0, seg2}},
		// Beyond the slack: forgotten.
		{wm: 901, present: []int{1, 2}, storedAfter: []string{seg0, seg2}},
		// All of segment 0 expired: deleted (k1 lingers in memory).
		{wm: 951, present: []int{1, 2}, deleted: []string{seg0}, storedAfter: []string{seg2}},
		{wm: 1021, present: []int{1, 2}, deleted: []string{seg2}},
		{wm: 1051, present: nil},
	} {
		cp := commitDedupe(d, m, 10, step.wm, window)
		if got := keysOf(cp, true, ""); !slices.Equal(got, step.deleted) {
			t.Errorf("wm %d: deleted %q, want %q", step.wm, got, step.deleted)
		}
		if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, step.storedAfter) {
			t.Errorf("wm %d: stored %q, want %q", step.wm, got, step.storedAfter)
		}
		for i := range 3 {
			if _, ok := d.lookup(k(i)); ok != slices.Contains(step.present, i) {
				t.Errorf("wm %d: entry %d present %v", step.wm, i, ok)
			}
		}
	}
	// An entry recorded but expired by the time of the checkpoint is not
	// written.
	d.record(k(9), seenAt{recv: 10, offset: 9})
	if cp := commitDedupe(d, m, 20, 2000, window); len(cp) != 0 {
		t.Errorf("expired entry written: %v", cp)
	}
}

func TestDedupeLoadErrors(t *testing.T) {
	key := eventKeyOf("p", "c", "e")
	good := append([]byte{segmentVersion, 0}, key[:]...)
	good = binary.AppendVarint(binary.AppendVarint(good, 100), 7)
	for _, c := range []struct {
		name  string
		kv    viewstore.KV
		owned bool
		err   bool
	}{
		{"segment", viewstore.KV{Key: segmentKey(dedupeSegPrefix, 3), Value: good}, true, false},
		{"empty segment", viewstore.KV{Key: segmentKey(dedupeSegPrefix, 3), Value: []byte{segmentVersion, 0}}, true, false},
		{"session segment", viewstore.KV{Key: segmentKey(sessionSegPrefix, 3), Value: good}, false, false},
		{"other", viewstore.KV{Key: "x/y", Value: nil}, false, false},
		{"no version", viewstore.KV{Key: segmentKey(dedupeSegPrefix, 3), Value: nil}, true, true},
		{"unknown version", viewstore.KV{Key: segmentKey(dedupeSegPrefix, 3), Value: append([]byte{segmentVersion + 1}, good[1:]...)}, true, true},
		{"no checkpoint end", viewstore.KV{Key: segmentKey(dedupeSegPrefix, 3), Value: []byte{segmentVersion, 0x80}}, true, true},
		{"truncated key", viewstore.KV{Key: segmentKey(dedupeSegPrefix, 3), Value: good[:10]}, true, true},
		{"no receive time", viewstore.KV{Key: segmentKey(dedupeSegPrefix, 3), Value: good[:18]}, true, true},
		{"bad receive time", viewstore.KV{Key: segmentKey(dedupeSegPrefix, 3), Value: append(good[:18:18], 0x80)}, true, true},
		{"no offset", viewstore.KV{Key: segmentKey(dedupeSegPrefix, 3), Value: good[:len(good)-1]}, true, true},
		{"bad key", viewstore.KV{Key: dedupeSegPrefix + "abc", Value: good}, true, true},
		{"negative id", viewstore.KV{Key: segmentKey(dedupeSegPrefix, -1), Value: good}, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			owned, err := newDedupe().load(c.kv, noEnd)
			if owned != c.owned || (err != nil) != c.err {
				t.Fatalf("load = %v, %v; want owned %v, error %v", owned, err, c.owned, c.err)
			}
			if err != nil && !errors.Is(err, errCorruptStateLog) {
				t.Fatalf("error %v is not errCorruptStateLog", err)
			}
		})
	}
}

// The dedupe entries within the window survive any subset of a
// checkpoint reaching the store.
func TestDedupeCrash(t *testing.T) {
	for _, mode := range crashModes {
		t.Run(mode.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(6))
			const window = 300
			m := memState{}
			old := newDedupe()
			for i := range 200 {
				old.record(eventKeyOf("p", "c", "old"+strconv.Itoa(i)), seenAt{recv: int64(i), offset: -1})
			}
			commitDedupe(old, m, 0, 0, window)
			d := loadDedupeFrom(t, m, rng)
			committed := maps.Clone(d.seen)
			var wm, committedWM, offset int64
			for round := range 300 {
				seg := offset
				for range rng.Intn(30) {
					wm += rng.Int63n(3)
					k := eventKeyOf("p", "c", strconv.Itoa(rng.Intn(5000)))
					if at, ok := d.lookup(k); !ok || wm-at.recv > window {
						d.record(k, seenAt{recv: wm, offset: offset})
					}
					offset++
				}
				d.prune(wm, window)
				cp := d.checkpoint(seg, 0, nil)
				if round >= 3 && rng.Intn(4) != 0 { // the first ones fail
					m.apply(cp, nil)
					d.committed()
					committed, committedWM = maps.Clone(d.seen), wm
					if rng.Intn(5) == 0 {
						r := loadDedupeFrom(t, m, rng)
						for k, at := range committed {
							if got, ok := r.seen[k]; wm-at.recv <= window && (!ok || got != at) {
								t.Fatalf("round %d: entry %v reloaded as %v %v", round, at, got, ok)
							}
						}
					}
					continue
				}
				m.apply(cp, func(kv viewstore.KV) bool { return mode.keep(rng, kv) })
				d = loadDedupeFrom(t, m, rng)
				// Entries expired by the failed checkpoint may go (their
				// segment's deletion may have been stored); no other.
				for k, at := range committed {
					if wm-at.recv > window {
						continue
					}
					if got, ok := d.seen[k]; !ok || at.newer(got) {
						t.Fatalf("round %d: entry %v lost or wrong after a crash: %v %v", round, at, got, ok)
					}
				}
				wm, offset = committedWM, seg
				committed = maps.Clone(d.seen)
			}
		})
	}
}

var crashModes = []struct {
	name string
	keep func(*rand.Rand, viewstore.KV) bool
}{
	{"any subset", func(rng *rand.Rand, _ viewstore.KV) bool { return rng.Intn(2) == 0 }},
	{"deletions only", func(_ *rand.Rand, kv viewstore.KV) bool { return kv.Delete }},
	{"writes only", func(_ *rand.Rand, kv viewstore.KV) bool { return !kv.Delete }},
	{"nothing", func(*rand.Rand, viewstore.KV) bool { return false }},
	{"everything", func(*rand.Rand, viewstore.KV) bool { return true }},
}

// sessionSim runs random session changes against a sessionLog, with a
// reference map of what it should hold and a simulated store.
type sessionSim struct {
	t         *testing.T
	rng       *rand.Rand
	l         *sessionLog
	m         memState
	ref       map[string]session // what l holds
	committed map[string]session // what l held at the last commit
	wm        int64              // receive time watermark
	cwm       int64              // watermark of the last commit
	offset    int64
	seg       int64 // first offset since the last checkpoint
	cpSeg     int64 // first offset of the last checkpoint
	keys      int
	retention int64
	campaign  string
}

func newSessionSim(t *testing.T, seed int64, keys int, m memState) *sessionSim {
	s := &sessionSim{t: t, rng: rand.New(rand.NewSource(seed)), m: m, keys: keys, retention: 600, wm: 1_000_000}
	s.l = loadSessionLogFrom(t, m, s.rng)
	s.l.prune(s.wm, s.retention)
	s.ref = sessionsOf(s.l)
	s.committed, s.cwm = maps.Clone(s.ref), s.wm
	return s
}

// events applies n random events.
func (s *sessionSim) events(n int) {
	for range n {
		s.wm += s.rng.Int63n(4)
		key := "p\x1fc" + strconv.Itoa(s.rng.Intn(s.keys))
		// A key's sessions are received in order (after a crash, the
		// records applied again have the times they had).
		recv := s.wm
		if cur := s.l.get(key); cur != nil {
			recv = max(recv, cur.lastRecv)
		}
		if cur := s.l.get(key); cur != nil && s.rng.Intn(5) != 0 {
			cur.pageViews++
			cur.lastRecv, cur.lastEvent, cur.lastOffset = recv, recv, s.offset
			s.l.touch(key)
		} else {
			number := int64(1)
			if cur != nil {
				number = cur.number + 1
			}
			s.l.put(key, &session{id: recv, number: number, source: "src" + strconv.Itoa(s.rng.Intn(7)), medium: "m", campaign: s.campaign,
				lastEvent: recv, lastRecv: recv, lastOffset: s.offset})
		}
		s.ref[key] = *s.l.get(key)
		s.offset++
	}
}

// checkpoint prunes, checks the log against the reference, and returns
// the checkpoint's changes.
func (s *sessionSim) checkpoint() []viewstore.KV {
	s.t.Helper()
	s.l.prune(s.wm, s.retention)
	for k, v := range s.ref {
		if s.wm-v.lastRecv > s.retention {
			delete(s.ref, k)
		}
	}
	if got := sessionsOf(s.l); !maps.Equal(got, s.ref) {
		s.t.Fatalf("log holds %d sessions, reference %d", len(got), len(s.ref))
	}
	cp := s.l.checkpoint(s.seg, 0, nil)
	s.cpSeg = s.seg
	for _, kv := range cp {
		if !kv.Delete && len(kv.Value) > maxSegmentBytes {
			s.t.Fatalf("row %q of %d bytes", kv.Key, len(kv.Value))
		}
	}
	s.seg = s.offset
	return cp
}

func (s *sessionSim) commit(cp []viewstore.KV) {
	s.m.apply(cp, nil)
	s.l.committed()
	s.committed, s.cwm = maps.Clone(s.ref), s.wm
}

// reload checks that a log loaded from the store holds the committed
// sessions, and continues with it when swap.
func (s *sessionSim) reload(swap bool) {
	s.t.Helper()
	r := loadSessionLogFrom(s.t, s.m, s.rng)
	r.prune(s.cwm, s.retention)
	if got := sessionsOf(r); !maps.Equal(got, s.committed) {
		s.t.Fatalf("reloaded %d sessions, committed %d", len(got), len(s.committed))
	}
	if swap {
		s.l = r
	}
}

// crash stores part of cp, and continues with a log loaded from the store
// (as a runner does after a failed commit), checking it lost no session.
func (s *sessionSim) crash(cp []viewstore.KV, keep func(*rand.Rand, viewstore.KV) bool) {
	s.t.Helper()
	s.m.apply(cp, func(kv viewstore.KV) bool { return keep(s.rng, kv) })
	r := loadSessionLogFrom(s.t, s.m, s.rng)
	r.prune(s.cwm, s.retention)
	got := sessionsOf(r)
	for k, v := range s.committed {
		if s.wm-v.lastRecv > s.retention {
			// Expired by the failed checkpoint, which may have deleted
			// its segment: gone, or an older version until the next
			// prune.
			continue
		}
		if g, ok := got[k]; !ok || g != v && g != s.ref[k] {
			s.t.Fatalf("session %q lost or wrong after a crash: got %+v (%v), committed %+v, new %+v", k, g, ok, v, s.ref[k])
		}
	}
	for k, g := range got {
		if _, ok := s.committed[k]; !ok && g != s.ref[k] {
			s.t.Fatalf("session %q loaded as %+v, never committed", k, g)
		}
	}
	s.l, s.ref, s.committed, s.wm = r, got, maps.Clone(got), s.cwm
	// The records after the commit are applied again (other events here,
	// but from the same offset).
	s.offset, s.seg = s.cpSeg, s.cpSeg
}

func (s *sessionSim) checkSegments() {
	s.t.Helper()
	live := 0
	for k, v := range s.m {
		if strings.HasPrefix(k, sessionSegPrefix) {
			live += len(v)
		}
	}
	// Segments emptied by the last commit go with the next checkpoint.
	if n, limit := s.m.count(sessionSegPrefix), maxSessionSegments+2*live/maxSegmentBytes+8; n > limit {
		s.t.Fatalf("%d session segments stored, want at most %d", n, limit)
	}
}

func TestSessionLogRandom(t *testing.T) {
	for seed := range int64(6) {
		t.Run(strconv.FormatInt(seed, 10), func(t *testing.T) {
			s := newSessionSim(t, seed, 300, memState{})
			for round := range 400 {
				s.events(s.rng.Intn(40))
				s.commit(s.checkpoint())
				s.checkSegments()
				if s.rng.Intn(10) == 0 {
					s.reload(round%2 == 0)
				}
			}
			s.reload(false)
			if s.m.count(sessionSegPrefix) == 0 || len(s.committed) == 0 {
				t.Fatal("nothing stored")
			}
		})
	}
}

func TestSessionLogCrash(t *testing.T) {
	for _, mode := range crashModes {
		t.Run(mode.name, func(t *testing.T) {
			for seed := range int64(4) {
				m := memState{}
				old := newSessionLog()
				for i := range 150 {
					old.put("p\x1fc"+strconv.Itoa(i), &session{id: 1, number: 1, source: "old", lastRecv: 1_000_000 - int64(i)})
				}
				m.apply(old.checkpoint(0, 0, nil), nil)
				s := newSessionSim(t, seed, 200, m)
				for round := range 300 {
					s.events(s.rng.Intn(30))
					cp := s.checkpoint()
					if round < 3 || s.rng.Intn(3) == 0 { // the first ones fail
						s.crash(cp, mode.keep)
						continue
					}
					s.commit(cp)
					if s.rng.Intn(5) == 0 {
						s.reload(false)
					}
				}
				s.commit(s.checkpoint())
				s.commit(s.checkpoint())
				s.reload(false)
			}
		})
	}
}

func loadSessionLogFromRest(t *testing.T, m memState, rng *rand.Rand) *sessionLog {
	t.Helper()
	l := newSessionLog()
	if _, err := l.load(m.rows(rng), noEnd); err != nil {
		t.Fatal(err)
	}
	return l
}

// Superseded segments and versions are deleted, at the latest by the
// checkpoint after a load.
func TestSessionLogDeletesSuperseded(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	m := memState{}
	l := newSessionLog()
	l.put("k1", &session{lastRecv: 10})
	l.put("k2", &session{lastRecv: 10})
	m.apply(l.checkpoint(0, 0, nil), nil)
	l.committed()
	l.touch("k1")
	l.touch("k2")
	cp := l.checkpoint(5, 0, nil)
	if got := keysOf(cp, true, ""); len(got) != 0 {
		t.Fatalf("deleted %q with the checkpoint moving its sessions", got)
	}
	m.apply(cp, nil)
	l.committed()
	// Lost the deletion of segment 0 (a crash): the next load deletes it.
	r := loadSessionLogFromRest(t, m, rng)
	if got := keysOf(r.checkpoint(9, 0, nil), true, ""); !slices.Equal(got, []string{segmentKey(sessionSegPrefix, 0)}) {
		t.Fatalf("after load, deleted %q", got)
	}
	if got := keysOf(l.checkpoint(9, 0, nil), true, ""); !slices.Equal(got, []string{segmentKey(sessionSegPrefix, 0)}) {
		t.Fatalf("deleted %q", got)
	}
}

func TestSessionLogLargeCheckpoint(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	s := newSessionSim(t, 9, 8000, memState{})
	s.campaign, s.retention = strings.Repeat("c", 100), 1<<40
	s.events(20_000)
	cp := s.checkpoint()
	if len(cp) < 2 {
		t.Fatalf("%d rows", len(cp))
	}
	for i, kv := range cp {
		if kv.Key != segmentKey(sessionSegPrefix, int64(i)) {
			t.Fatalf("row %d is %q", i, kv.Key)
		}
	}
	s.commit(cp)
	s.reload(false)
	// Proposed ids at or below known ones are moved past them.
	r := loadSessionLogFrom(t, s.m, rng)
	for k := range sessionsOf(r) {
		r.touch(k)
		break
	}
	if got, want := keysOf(r.checkpoint(0, 0, nil), false, ""), []string{segmentKey(sessionSegPrefix, int64(len(cp)))}; !slices.Equal(got, want) {
		t.Fatalf("wrote %q, want %q", got, want)
	}
}

func TestSessionLogLoadErrors(t *testing.T) {
	enc := encodeSession(&session{id: 1, source: "s"})
	good := append([]byte{segmentVersion, 0}, 1, 'k')
	good = append(binary.AppendUvarint(good, uint64(len(enc))), enc...)
	for _, c := range []struct {
		name string
		kv   viewstore.KV
		err  bool
	}{
		{"segment", viewstore.KV{Key: segmentKey(sessionSegPrefix, 1), Value: good}, false},
		{"no version", viewstore.KV{Key: segmentKey(sessionSegPrefix, 1), Value: nil}, true},
		{"unknown version", viewstore.KV{Key: segmentKey(sessionSegPrefix, 1), Value: append([]byte{9}, good[1:]...)}, true},
		{"truncated key", viewstore.KV{Key: segmentKey(sessionSegPrefix, 1), Value: []byte{segmentVersion, 0, 5, 'k'}}, true},
		{"no session", viewstore.KV{Key: segmentKey(sessionSegPrefix, 1), Value: good[:3]}, true},
		{"truncated session", viewstore.KV{Key: segmentKey(sessionSegPrefix, 1), Value: good[:len(good)-1]}, true},
		{"bad session", viewstore.KV{Key: segmentKey(sessionSegPrefix, 1), Value: []byte{segmentVersion, 0, 1, 'k', 1, 0x80}}, true},
		{"bad key", viewstore.KV{Key: sessionSegPrefix + "1", Value: good}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newSessionLog()
			rest, err := l.load([]viewstore.KV{{Key: "x", Value: []byte("y")}, c.kv}, noEnd)
			if (err != nil) != c.err {
				t.Fatalf("load: %v", err)
			}
			if err == nil && (len(rest) != 1 || rest[0].Key != "x" || l.get("k") == nil) {
				t.Fatalf("rest %v, session %v", rest, l.get("k"))
			}
		})
	}
}

// sessionWorkload drives a sessionLog like a busy partition: 100 events a
// second, mostly of recently active visitors, sessions kept for 30 minutes
// after their last event, a checkpoint every interval events, and measures
// what it writes.
type sessionWorkload struct {
	l              *sessionLog
	m              memState
	rng            *rand.Rand
	wm, offset     int64
	recent         []int
	dirty          map[string]bool // changed since the last checkpoint, when accounting
	account        bool
	interval       int
	checkpoints    int
	written, dirtB int // bytes of segments written, and of the changed sessions in them
	rowsWritten    int
	maxRows        int
}

const workloadRetention = 1800

func newSessionWorkload(seed int64, interval int) *sessionWorkload {
	return &sessionWorkload{l: newSessionLog(), m: memState{}, rng: rand.New(rand.NewSource(seed)), wm: 1e9, recent: make([]int, 300), dirty: map[string]bool{}, account: true, interval: interval}
}

func (w *sessionWorkload) run(events int) {
	const visitors, timeout = 50_000, 900
	for range events {
		if w.offset%100 == 0 {
			w.wm++
		}
		var v int
		if i := w.rng.Intn(len(w.recent)); w.rng.Intn(5) != 0 {
			v = w.recent[i]
		} else {
			v = w.rng.Intn(visitors)
			w.recent[i] = v
		}
		key := "prop\x1fclient-" + strconv.Itoa(v)
		if s := w.l.get(key); s != nil && w.wm-s.lastRecv < timeout {
			s.pageViews++
			s.lastRecv, s.lastOffset = w.wm, w.offset
			w.l.touch(key)
		} else {
			w.l.put(key, &session{id: w.wm, number: 1, source: "google", medium: "organic", lastRecv: w.wm, lastEvent: w.wm, lastOffset: w.offset})
		}
		if w.account {
			w.dirty[key] = true
		}
		w.offset++
		if w.offset%int64(w.interval) == 0 {
			w.l.prune(w.wm, workloadRetention)
			for k := range w.dirty {
				if s := w.l.get(k); s != nil {
					w.dirtB += 2 + len(k) + len(encodeSession(s))
				}
			}
			clear(w.dirty)
			cp := w.l.checkpoint(w.offset, 0, nil)
			for _, kv := range cp {
				w.written += len(kv.Value)
				if !kv.Delete {
					w.rowsWritten++
				}
			}
			w.m.apply(cp, nil)
			w.l.committed()
			w.checkpoints++
			w.maxRows = max(w.maxRows, w.m.count(sessionSegPrefix))
		}
	}
}

// The segments stay few, and compaction costs a bounded multiple of the
// changed sessions.
func TestSessionLogCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	w := newSessionWorkload(10, 200)
	w.run(360_000) // an hour
	amp := float64(w.written) / float64(w.dirtB)
	live := 0
	for _, v := range w.m {
		live += len(v)
	}
	t.Logf("%d sessions, %d segments (%d at most) of %d KiB, write amplification %.2f, %.2f rows per checkpoint",
		w.l.len(), w.m.count(sessionSegPrefix), w.maxRows, live>>10, amp, float64(w.rowsWritten)/float64(w.checkpoints))
	if w.maxRows > maxSessionSegments+2*live/maxSegmentBytes+8 {
		t.Errorf("%d segments", w.maxRows)
	}
	if amp > 8 {
		t.Errorf("write amplification %.2f", amp)
	}
	r := loadSessionLogFrom(t, w.m, w.rng)
	r.prune(w.wm, workloadRetention) // sessions pruned may be loaded again from older segments
	if got, want := sessionsOf(r), sessionsOf(w.l); !maps.Equal(got, want) {
		t.Fatalf("reloaded %d sessions of %d", len(got), len(want))
	}
}

// BenchmarkSessionLog is the session log's cost per event of the workload
// (its driver's included: keys, new sessions), checkpoints every 50 events
// (prune, encoding, compaction) included; and what it writes, measured
// over the 100,000 events that follow.
func BenchmarkSessionLog(b *testing.B) {
	w := newSessionWorkload(11, 50)
	w.account = false
	w.run(200_000) // warm up: 33 minutes of sessions
	b.ReportAllocs()
	for b.Loop() {
		w.run(1)
	}
	b.StopTimer()
	w.account, w.written, w.dirtB, w.rowsWritten, w.checkpoints, w.maxRows = true, 0, 0, 0, 0, 0
	w.run(100_000)
	b.ReportMetric(float64(w.written)/float64(w.dirtB), "writeamp")
	b.ReportMetric(float64(w.maxRows), "maxsegments")
	b.ReportMetric(float64(w.rowsWritten)/float64(w.checkpoints), "rows/checkpoint")
}

// BenchmarkDedupe is the cost per event of the dedupe check and record
// (lookup, then record, over a set of 1M entries; a checkpoint every 2,000
// events), with 16-byte keys. heapB/entry is the set's memory.
func BenchmarkDedupe(b *testing.B) {
	const n = 1 << 20
	rng := rand.New(rand.NewSource(12))
	type ids struct{ property, client, event string }
	evs := make([]ids, n)
	for i := range evs {
		evs[i] = ids{"G-PROPERTY1", fmt.Sprintf("%d.%d", rng.Int63n(1e10), 1e9+rng.Int63n(1e8)), fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())}
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	b.Run("eventKey", func(b *testing.B) {
		before := heap()
		d := newDedupe()
		for i, e := range evs {
			d.record(eventKeyOf(e.property, e.client, e.event), seenAt{recv: int64(i), offset: int64(i)})
		}
		d.pending = nil
		perEntry := float64(heap()-before) / n
		var out []viewstore.KV
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e := &evs[i&(n-1)]
			k := eventKeyOf(e.property, e.client, e.event)
			if at, ok := d.lookup(k); !ok || at.offset != int64(i) {
				d.record(k, seenAt{recv: int64(i), offset: int64(i)})
			}
			i++
			if i%2000 == 0 {
				out = d.checkpoint(int64(i), 0, out[:0])
				d.committed()
			}
		}
		b.ReportMetric(perEntry, "heapB/entry")
	})
}

// noEnd loads every segment: as if all were committed.
const noEnd = 1 << 62

// Segments written by a checkpoint past the committed progress are left
// out of the state, and deleted by the next checkpoint, whose segments get
// new ids.
func TestUncommittedSegmentsIgnored(t *testing.T) {
	l := newSessionLog()
	l.put("p\x1fa", &session{id: 1, number: 1, lastRecv: 10})
	committed := l.checkpoint(0, 5, nil)
	l.committed()
	l.put("p\x1fa", &session{id: 2, number: 2, lastRecv: 20})
	failed := l.checkpoint(5, 9, nil)
	d := newDedupe()
	d.record(eventKeyOf("p", "a", "e1"), seenAt{recv: 10, offset: 3})
	dCommitted := d.checkpoint(0, 5, nil)
	d.committed()
	d.record(eventKeyOf("p", "a", "e2"), seenAt{recv: 12, offset: 6})
	dFailed := d.checkpoint(5, 9, nil)

	all := append(append(append(append([]viewstore.KV(nil), committed...), failed...), dCommitted...), dFailed...)
	r := newSessionLog()
	rest, err := r.load(slices.Clone(all), 5)
	if err != nil {
		t.Fatal(err)
	}
	if s := r.get("p\x1fa"); s == nil || s.id != 1 {
		t.Fatalf("session after load: %+v, want the committed one", s)
	}
	rd := newDedupe()
	for _, kv := range rest {
		if _, err := rd.load(kv, 5); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := rd.lookup(eventKeyOf("p", "a", "e2")); ok {
		t.Fatal("an event id of the failed checkpoint was loaded")
	}
	if _, ok := rd.lookup(eventKeyOf("p", "a", "e1")); !ok {
		t.Fatal("a committed event id was lost")
	}
	r.put("p\x1fa", &session{id: 2, number: 2, lastRecv: 20})
	again := r.checkpoint(5, 9, nil)
	if got, want := keysOf(again, true, ""), keysOf(failed, false, ""); !slices.Equal(got, want) {
		t.Errorf("deleted %v, want the failed segments %v", got, want)
	}
	for _, k := range keysOf(again, false, "") {
		if slices.Contains(keysOf(failed, false, ""), k) {
			t.Errorf("segment %q of the failed checkpoint rewritten in place", k)
		}
	}
}

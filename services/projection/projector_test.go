package projection

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/pebblelog"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var v1 = viewstore.NamespaceOf("traffic", "v1")

// The projector over the embedded log and store: events applied once,
// redelivered duplicates dropped, and a restart continues from the
// committed offsets without recounting.
func TestProjectorEmbedded(t *testing.T) {
	dir := t.TempDir()
	log, st := openEmbedded(t, dir)
	appendEvents(t, log, 0, 300, nil)
	runUntil(t, log, st)
	if a := storedTotal(t, st, v1, "p1"); a.Events != 300 || a.PageViews != 300 || a.Users.Estimate() != 7 {
		t.Fatalf("after the first run: %s", summary(a))
	}
	// Retries of 100 events already counted, and 100 new ones.
	appendEvents(t, log, 300, 400, func(i int) int { return i - 300 })
	appendEvents(t, log, 300, 400, nil)
	log.Close()
	st.Close()

	log, st = openEmbedded(t, dir)
	defer log.Close()
	defer st.Close()
	runUntil(t, log, st)
	if a := storedTotal(t, st, v1, "p1"); a.Events != 400 || a.PageViews != 400 || a.Users.Estimate() != 7 {
		t.Fatalf("after the restart: %s, want 400 events and views, 7 users", summary(a))
	}
	var dups, applied int64
	progress, _ := st.ListProgress(context.Background(), v1)
	for _, p := range progress {
		dups += p.Duplicates
		applied += p.Applied
	}
	if dups != 100 || applied != 400 {
		t.Fatalf("applied %d duplicates %d, want 400 and 100", applied, dups)
	}
}

// Poison records go to the dead letters with their reason; the partition
// keeps going.
func TestProjectorDeadLetters(t *testing.T) {
	dir := t.TempDir()
	log, st := openEmbedded(t, dir)
	defer log.Close()
	defer st.Close()
	dead, err := pebblelog.Open(dir+"/dead", pebblelog.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	appendEvents(t, log, 0, 5, nil)
	poison := []eventlog.Message{
		{Key: []byte("p1/c1"), Value: []byte{0xff, 0xff, 0xff}},
		{Key: []byte("p1/c1"), Value: []byte{}, Headers: map[string]string{eventlog.HeaderSchemaVersion: "9"}},
	}
	if err := log.Append(context.Background(), poison); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, log, 5, 10, nil)
	runUntilWith(t, log, st, Config{DeadLetters: dead})
	if a := storedTotal(t, st, v1, "p1"); a.Events != 10 {
		t.Fatalf("events %d, want 10", a.Events)
	}
	recs, err := dead.Read(context.Background(), 0, 0, 10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("dead letters %v %v", recs, err)
	}
	reasons := recs[0].Headers[HeaderDeadLetterReason] + " | " + recs[1].Headers[HeaderDeadLetterReason]
	if !strings.Contains(reasons, "undecodable") || !strings.Contains(reasons, "unknown schema version 9") ||
		recs[1].Headers[HeaderProjection] != "traffic/v1" || recs[1].Headers[HeaderSourceOffset] == "" {
		t.Fatalf("dead letters lack their reasons or origin: %v", recs)
	}
}

func TestFlushInterval(t *testing.T) {
	p := &Projector{cfg: Config{FlushInterval: 100 * time.Millisecond}}
	for _, tc := range []struct {
		name       string
		behind     bool
		lastCommit time.Duration
		want       time.Duration
	}{
		{"head, fast store", false, 10 * time.Millisecond, 100 * time.Millisecond},
		{"head, slow store: twice the commit", false, 150 * time.Millisecond, 300 * time.Millisecond},
		{"head, very slow store: capped for freshness", false, 5 * time.Second, maxLiveFlush},
		{"far behind", true, 10 * time.Millisecond, lagFlush},
	} {
		if got := p.flushInterval(tc.behind, tc.lastCommit); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// interrupting is a store whose commits fail now and then the way a
// store that cannot commit atomically fails half way (cqlstore): the
// additions, state and watermarks are written, and the progress only
// records the checkpoint's end as its Intent.
type interrupting struct {
	viewstore.Store
	every int64
	n     atomic.Int64
	hits  atomic.Int64
	// intents are the ends of the interrupted commits, by partition.
	mu      sync.Mutex
	intents map[int32]int64
}

var errInterrupted = errors.New("commit interrupted (test)")

func (s *interrupting) Commit(ctx context.Context, ns viewstore.Namespace, cp viewstore.Checkpoint) error {
	if s.n.Add(1)%s.every != 0 || len(cp.Additions) == 0 {
		return s.Store.Commit(ctx, ns, cp)
	}
	s.hits.Add(1)
	s.mu.Lock()
	s.intents[cp.Progress.Partition] = cp.Progress.Next
	s.mu.Unlock()
	prev, _, err := s.Store.LoadPartition(ctx, ns, cp.Progress.Partition)
	if err != nil {
		return err
	}
	half := cp
	half.Progress = prev
	half.Progress.Partition = cp.Progress.Partition
	if err := s.Store.Commit(ctx, ns, half); err != nil {
		return err
	}
	return errInterrupted
}

func (s *interrupting) LoadPartition(ctx context.Context, ns viewstore.Namespace, p int32) (viewstore.Progress, []viewstore.KV, error) {
	pr, kvs, err := s.Store.LoadPartition(ctx, ns, p)
	// What the interrupted commit left: its end, as the intent.
	s.mu.Lock()
	if end := s.intents[p]; err == nil && end > pr.Next {
		pr.Intent = end
	}
	s.mu.Unlock()
	return pr, kvs, err
}

// ragged reads its log in batches of random sizes, so that checkpoints end
// at different offsets from run to run, as they do in production (they
// follow time and the log's arrivals).
type ragged struct {
	*pebblelog.Log
	mu  sync.Mutex
	rng *rand.Rand
}

func (r *ragged) Read(ctx context.Context, p int32, offset int64, max int) ([]eventlog.Record, error) {
	r.mu.Lock()
	n := 1 + r.rng.Intn(max)
	r.mu.Unlock()
	return r.Log.Read(ctx, p, offset, n)
}

// mixedEvents are events of one property over two days, with retries,
// sessions, sources and engagement, in a random order of clients.
func mixedEvents(t *testing.T, n int, seed int64) []eventlog.Message {
	rng := rand.New(rand.NewSource(seed))
	var msgs []eventlog.Message
	for i := range n {
		id := i
		if i > 10 && rng.Intn(10) == 0 {
			id = i - 1 - rng.Intn(min(i, 800)) // a retry, of the last 30 hours
		}
		r := rand.New(rand.NewSource(int64(id)))
		e := ev(fmt.Sprint("e", id), fmt.Sprint("c", r.Intn(40)), []string{"page_view", "scroll", "user_engagement"}[r.Intn(3)],
			page(fmt.Sprint("/p", r.Intn(9))), at(time.Duration(id)*137*time.Second))
		if r.Intn(4) == 0 {
			e.TrafficSource = &eventv1.TrafficSource{Source: "news", Medium: "email"}
		}
		// A retry arrives now, whenever it happened.
		e.ReceiveTime = timestamppb.New(t0.Add(time.Duration(i) * 137 * time.Second))
		e.EngagementTimeMsec = int64(r.Intn(3)) * 4000
		msgs = append(msgs, message(t, e))
	}
	return msgs
}

// A checkpoint interrupted after its additions were stored and before its
// progress was is written again, exactly: the read model equals that of a
// projector that was never interrupted, compacted or not.
func TestInterruptedCheckpointsRewritten(t *testing.T) {
	msgs := mixedEvents(t, 3000, 1)
	run := func(every int64) (string, int64) {
		dir := t.TempDir()
		log, base := openEmbedded(t, dir)
		defer log.Close()
		defer base.Close()
		var st viewstore.Store = base
		var hits *atomic.Int64
		if every > 0 {
			is := &interrupting{Store: base, every: every, intents: map[int32]int64{}}
			st, hits = is, &is.hits
		}
		for i := 0; i < len(msgs); i += 50 {
			if err := log.Append(context.Background(), msgs[i:min(i+50, len(msgs))]); err != nil {
				t.Fatal(err)
			}
		}
		startCaughtUp(t, &ragged{Log: log, rng: rand.New(rand.NewSource(every))}, st, Config{MaxPending: 97, FlushInterval: 5 * time.Millisecond, Compaction: CompactionConfig{Off: true}})()
		got := summary(storedTotal(t, st, v1, "p1"))
		progress, _ := st.ListProgress(context.Background(), v1)
		for _, p := range progress {
			got += fmt.Sprintf(" [%d: next %d applied %d dups %d]", p.Partition, p.Next, p.Applied, p.Duplicates)
		}
		compactAll(t, st, v1)
		if again := summary(storedTotal(t, st, v1, "p1")); !strings.HasPrefix(got, again) {
			t.Fatalf("compaction changed the totals: %s, then %s", got, again)
		}
		if n := pendingAdditions(t, st, v1); n != 0 {
			t.Fatalf("%d additions left after compacting everything", n)
		}
		if hits != nil {
			return got, hits.Load()
		}
		return got, 0
	}
	want, _ := run(0)
	for _, every := range []int64{2, 3, 4, 5} {
		got, hits := run(every)
		if hits == 0 {
			t.Fatalf("every %d: no commit was interrupted", every)
		}
		if got != want {
			t.Fatalf("with %d interrupted commits: %s\n              never interrupted: %s", hits, got, want)
		}
	}
}

package loadgen

import (
	"encoding/json"
	"io"
	"maps"
	"slices"
	"sync"
	"time"
)

// Truth accumulates the exact aggregates Sextant's traffic/v1 projection
// should report for the batches added to it (the acknowledged ones): per
// property, eventCount, screenPageViews, totalUsers (distinct client ids),
// newUsers (users with first_visit), sessions (distinct client and
// ga_session_id) and the page views of every page path. It is safe for
// concurrent use.
type Truth struct {
	mu    sync.Mutex
	props map[int]*propertyTruth
	ids   map[int]string
}

type sessionKey struct {
	visitor int64
	session int64
}

type propertyTruth struct {
	events, views, bots int64
	users, newUsers     map[int64]struct{}
	sessions            map[sessionKey]struct{}
	paths               map[string]int64
	minT, maxT          int64 // event times, Unix micros
}

// NewTruth returns an empty Truth. ids names the properties by index (their
// Sextant property ids), for the report; it may be nil.
func NewTruth(ids []string) *Truth {
	t := &Truth{props: map[int]*propertyTruth{}, ids: map[int]string{}}
	for i, id := range ids {
		t.ids[i] = id
	}
	return t
}

func (t *Truth) property(i int) *propertyTruth {
	p := t.props[i]
	if p == nil {
		p = &propertyTruth{
			users:    map[int64]struct{}{},
			newUsers: map[int64]struct{}{},
			sessions: map[sessionKey]struct{}{},
			paths:    map[string]int64{},
		}
		t.props[i] = p
	}
	return p
}

// Add counts an acknowledged batch. received is when it was acknowledged:
// the event time of events sent without one.
func (t *Truth) Add(b *Batch, received time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.property(b.Property)
	p.users[b.Visitor] = struct{}{}
	for i := range b.Events {
		e := &b.Events[i]
		p.events++
		if b.Bot {
			p.bots++
		}
		switch e.Name {
		case "page_view", "screen_view":
			p.views++
			p.paths[e.Path]++
		case "first_visit", "first_open":
			p.newUsers[b.Visitor] = struct{}{}
		}
		p.sessions[sessionKey{b.Visitor, e.SessionID}] = struct{}{}
		ts := e.TimeMicros
		if ts == 0 {
			ts = received.UnixMicro()
		}
		if p.minT == 0 || ts < p.minT {
			p.minT = ts
		}
		if ts > p.maxT {
			p.maxT = ts
		}
	}
}

// TruthReport is Truth as JSON.
type TruthReport struct {
	// StartDate and EndDate (UTC, YYYY-MM-DD) span every event: a report
	// over them sees all of it.
	StartDate  string             `json:"startDate"`
	EndDate    string             `json:"endDate"`
	Properties []PropertyTruth    `json:"properties"`
	Totals     PropertyTruthTotal `json:"totals"`
}

// PropertyTruth is what one property's reports should say over the truth's
// date range.
type PropertyTruth struct {
	Index           int              `json:"index"`
	PropertyID      string           `json:"propertyId,omitempty"`
	EventCount      int64            `json:"eventCount"`
	ScreenPageViews int64            `json:"screenPageViews"`
	TotalUsers      int64            `json:"totalUsers"`
	NewUsers        int64            `json:"newUsers"`
	Sessions        int64            `json:"sessions"`
	BotEvents       int64            `json:"botEvents"`
	FirstEventTime  time.Time        `json:"firstEventTime"`
	LastEventTime   time.Time        `json:"lastEventTime"`
	PagePathViews   map[string]int64 `json:"pagePathViews"`
}

// PropertyTruthTotal sums the properties.
type PropertyTruthTotal struct {
	EventCount      int64 `json:"eventCount"`
	ScreenPageViews int64 `json:"screenPageViews"`
	TotalUsers      int64 `json:"totalUsers"`
	Sessions        int64 `json:"sessions"`
}

// Report returns the aggregates.
func (t *Truth) Report() TruthReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	var r TruthReport
	var minT, maxT int64
	for _, i := range slices.Sorted(maps.Keys(t.props)) {
		p := t.props[i]
		pt := PropertyTruth{
			Index: i, PropertyID: t.ids[i],
			EventCount: p.events, ScreenPageViews: p.views, BotEvents: p.bots,
			TotalUsers: int64(len(p.users)), NewUsers: int64(len(p.newUsers)), Sessions: int64(len(p.sessions)),
			FirstEventTime: time.UnixMicro(p.minT).UTC(), LastEventTime: time.UnixMicro(p.maxT).UTC(),
			PagePathViews: make(map[string]int64, len(p.paths)),
		}
		for k, v := range p.paths {
			pt.PagePathViews[k] = v
		}
		r.Properties = append(r.Properties, pt)
		r.Totals.EventCount += pt.EventCount
		r.Totals.ScreenPageViews += pt.ScreenPageViews
		r.Totals.TotalUsers += pt.TotalUsers
		r.Totals.Sessions += pt.Sessions
		if minT == 0 || p.minT < minT {
			minT = p.minT
		}
		maxT = max(maxT, p.maxT)
	}
	if minT != 0 {
		r.StartDate = time.UnixMicro(minT).UTC().Format(time.DateOnly)
		r.EndDate = time.UnixMicro(maxT).UTC().Format(time.DateOnly)
	}
	return r
}

// WriteJSON writes Report as indented JSON.
func (t *Truth) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(t.Report())
}

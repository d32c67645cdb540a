package catalog

import (
	"slices"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/block"
)

func TestChoose(t *testing.T) {
	for _, tc := range []struct {
		layout *Layout
		dims   []string
		minute bool
		want   int
	}{
		{Traffic, nil, false, 1},
		{Traffic, nil, true, 1},
		{Traffic, []string{PagePath}, false, 3},
		{Traffic, []string{Browser, DeviceCategory}, true, 5},
		{Traffic, []string{PagePath, CountryID}, false, 0},
		{Traffic, []string{PagePath, CountryID}, true, -1},
		{Traffic, []string{HostName}, false, -1},
		{TrafficHosts, []string{HostName}, false, 7},
		{TrafficHosts, []string{PagePath}, false, 3},
	} {
		if got := tc.layout.Choose(tc.dims, tc.minute); got != tc.want {
			t.Errorf("Choose(%v, minute %v) = %d, want %d", tc.dims, tc.minute, got, tc.want)
		}
	}
}

// Each section of a layout is a part of its own; PartOf finds a rollup's
// hour and minute sections, and only the hour parts of rollups that are
// not hourly keep day blocks.
func TestParts(t *testing.T) {
	for _, l := range []*Layout{Traffic, TrafficHosts} {
		secs := l.Sections()
		if l.Parts() != len(secs) {
			t.Errorf("%d parts for %d sections", l.Parts(), len(secs))
		}
		seen := make([]int, len(secs))
		for r, roll := range l.Rollups {
			for _, g := range []block.Grain{block.Hour, block.Minute} {
				p := l.PartOf(r, g)
				if g == block.Minute && !roll.Minute {
					if p != -1 {
						t.Errorf("rollup %v has no minute section, PartOf = %d", roll.Dims, p)
					}
					continue
				}
				seen[p]++
				if secs[p].Grain != g || !slices.Equal(secs[p].Dims, roll.Dims) {
					t.Errorf("PartOf(%d, %v) = %d, a %v section of %v", r, g, p, secs[p].Grain, secs[p].Dims)
				}
				if want := g == block.Hour && !roll.Hourly; l.KeepsDays(p) != want {
					t.Errorf("KeepsDays(%d) = %v, want %v", p, !want, want)
				}
			}
			if l.PartOf(r, block.Day) != l.PartOf(r, block.Hour) {
				t.Errorf("day sections are not in the hour part")
			}
		}
		for i, n := range seen {
			if n != 1 {
				t.Errorf("section %d in %d parts", i, n)
			}
		}
		if l.PartOf(-1, block.Hour) != -1 || l.PartOf(len(l.Rollups), block.Hour) != -1 || l.KeepsDays(-1) || l.KeepsDays(l.Parts()) {
			t.Error("parts out of range")
		}
		for _, d := range l.Dims {
			if Index(d) < 0 {
				t.Errorf("layout dimension %q not in the catalogue", d)
			}
		}
	}
	if len(Dimensions) > MaxDimensions {
		t.Errorf("%d dimensions, more than %d", len(Dimensions), MaxDimensions)
	}
}

// TestPartSections: without GroupDetail part i holds section i; with it
// (traffic/v5) the detail rollups' hour sections share one part, which
// keeps days, and every section is in exactly one part.
func TestPartSections(t *testing.T) {
	for _, l := range []*Layout{Traffic, TrafficHosts, TrafficDetail} {
		parts := l.PartSections()
		if len(parts) != len(l.Sections()) {
			t.Fatalf("%d parts for %d sections", len(parts), len(l.Sections()))
		}
		for p, secs := range parts {
			if len(secs) != 1 || secs[0] != p {
				t.Fatalf("part %d holds %v", p, secs)
			}
		}
	}
	for _, l := range []*Layout{TrafficUsers, TrafficCompact} {
		checkGroupedParts(t, l)
	}
	if n, want := len(TrafficUsers.PartSections()), 18; n != want {
		t.Errorf("traffic/v5: %d parts, want %d", n, want)
	}
	if n, want := len(TrafficCompact.PartSections()), 14; n != want {
		t.Errorf("traffic/v6: %d parts, want %d", n, want)
	}
	l := TrafficCompact
	minutes := l.PartOf(l.Choose([]string{EventName}, true), block.Minute)
	for _, dims := range [][]string{{CountryID}, {DeviceCategory}, {SessionSource}, {NewVsReturning}} {
		if p := l.PartOf(l.Choose(dims, true), block.Minute); p != minutes {
			t.Errorf("traffic/v6: the minute section by %v in part %d, not with the events' (%d)", dims, p, minutes)
		}
	}
	apart := map[int]bool{minutes: true}
	for _, dims := range [][]string{nil, {PagePath}, {HostName}} {
		p := l.PartOf(l.Choose(dims, true), block.Minute)
		if apart[p] || len(l.PartSections()[p]) != 1 {
			t.Errorf("traffic/v6: the minute section by %v shares part %d", dims, p)
		}
		apart[p] = true
	}
	if l.KeepsDays(minutes) || minutes == l.PartOf(l.Choose([]string{EventName}, false), block.Hour) {
		t.Errorf("traffic/v6: the minute part %d keeps days or holds hour sections", minutes)
	}
	if slices.ContainsFunc(TrafficUsers.Rollups, func(r Rollup) bool { return r.MinuteApart }) {
		t.Error("traffic/v6's rollups changed traffic/v5's")
	}
}

// checkGroupedParts checks a layout with GroupDetail: every section in
// exactly one part, the detail rollups' hour sections together in a part
// that keeps days, the pages' apart.
func checkGroupedParts(t *testing.T, l *Layout) {
	t.Helper()
	parts := l.PartSections()
	seen := map[int]int{}
	for p, secs := range parts {
		for _, s := range secs {
			seen[s]++
			if s < len(l.Rollups) && l.PartOf(s, block.Hour) != p {
				t.Errorf("rollup %d's hour section: part %d, in %d", s, l.PartOf(s, block.Hour), p)
			}
		}
	}
	if len(seen) != len(l.Sections()) || len(parts) >= len(l.Sections()) {
		t.Fatalf("%d sections in %d parts (of %d)", len(seen), len(parts), len(l.Sections()))
	}
	for s, n := range seen {
		if n != 1 {
			t.Errorf("section %d in %d parts", s, n)
		}
	}
	items := l.Choose([]string{ItemName}, false)
	pages := l.Choose([]string{PagePath}, false)
	shared := l.PartOf(items, block.Hour)
	if shared != l.PartOf(l.Choose([]string{City}, false), block.Hour) || shared == l.PartOf(pages, block.Hour) ||
		!l.KeepsDays(shared) || l.KeepsDays(l.PartOf(pages, block.Minute)) || l.KeepsDays(l.PartOf(0, block.Hour)) {
		t.Errorf("items' part %d, cities' %d, pages' %d", shared, l.PartOf(l.Choose([]string{City}, false), block.Hour), l.PartOf(pages, block.Hour))
	}
}

package catalog

import (
	"slices"
	"testing"
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

// Each section of a layout belongs to exactly one part, the part of its
// rollup.
func TestPartSections(t *testing.T) {
	for _, l := range []*Layout{Traffic, TrafficHosts} {
		secs := l.Sections()
		seen := make([]int, len(secs))
		for r, roll := range l.Rollups {
			for _, i := range l.PartSections(r) {
				seen[i]++
				if !slices.Equal(secs[i].Dims, roll.Dims) {
					t.Errorf("part %d holds section %d of %v", r, i, secs[i].Dims)
				}
			}
		}
		for i, n := range seen {
			if n != 1 {
				t.Errorf("section %d in %d parts", i, n)
			}
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

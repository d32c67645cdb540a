package analytics

import (
	"testing"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		max      int
	}{
		{"plain", "plain", 10},
		{"a\x1fb\nc", "abc", 10},
		{"abcdef", "abc", 3},
		{"ééé", "é", 3}, // never cut inside a rune
		{"aé", "a", 2},
	} {
		if got := Clean(tc.in, tc.max); got != tc.want {
			t.Errorf("Clean(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestAggregateRoundTripAndMerge(t *testing.T) {
	a := NewAggregate()
	a.Events, a.PageViews, a.EngagementMsec = 3, 2, 1500
	a.Users.Add(1)
	a.Users.Add(2)
	a.Sessions.Add(9)
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	d, err := UnmarshalAggregate(b)
	if err != nil {
		t.Fatal(err)
	}
	if d.Events != 3 || d.PageViews != 2 || d.EngagementMsec != 1500 || d.Users.Estimate() != 2 || d.Sessions.Estimate() != 1 {
		t.Fatalf("decoded %+v", d)
	}
	other := NewAggregate()
	other.Events = 1
	other.Users.Add(2)
	other.Users.Add(3)
	if err := d.Merge(other); err != nil {
		t.Fatal(err)
	}
	if d.Events != 4 || d.Users.Estimate() != 3 {
		t.Fatalf("merged events %d users %d", d.Events, d.Users.Estimate())
	}
	c := d.Clone()
	c.Users.Add(99)
	if d.Users.Estimate() != 3 {
		t.Fatal("clone shares sketches")
	}
	for _, bad := range [][]byte{nil, {9}, b[:len(b)-1], append(append([]byte{}, b...), 0)} {
		if _, err := UnmarshalAggregate(bad); err == nil {
			t.Fatalf("corrupt %x accepted", bad)
		}
	}
}

func FuzzUnmarshalAggregate(f *testing.F) {
	a := NewAggregate()
	a.Events = 5
	a.Users.Add(7)
	b, _ := a.MarshalBinary()
	f.Add(b)
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := UnmarshalAggregate(b)
		if err != nil {
			return
		}
		enc, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		d, err := UnmarshalAggregate(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if d.Events != a.Events || d.Users.Estimate() != a.Users.Estimate() {
			t.Fatal("round trip changed the aggregate")
		}
	})
}

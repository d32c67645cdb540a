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

// TestAggregateVersions: an aggregate without sums or extra sketches is
// written as version 1 (the bytes of the versions stored before version 2
// existed); one with them as version 2, which round-trips and merges with
// version-1 aggregates.
func TestAggregateVersions(t *testing.T) {
	base := NewAggregate()
	base.Events, base.PageViews = 2, 1
	base.Users.Add(1)
	base.Sessions.Add(2)
	v1, err := base.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// Version 1: version, three varints, five sketches (sorted format:
	// format, precision, count, hashes).
	if v1[0] != 1 || len(v1) != 1+3+(3+8)*2+3*3 {
		t.Fatalf("version 1 encoding %x", v1)
	}
	ext := NewAggregate()
	ext.Events = 1
	ext.Sums[SumPurchaseRevenue] = 12_500_000
	ext.Sums[SumKeyEvents] = 1
	ext.Extra(SketchPurchasers).Add(7)
	ext.Extra(SketchKeySessions) // created, left empty: not written
	v2, err := ext.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	d, err := UnmarshalAggregate(v2)
	if err != nil || v2[0] != 2 {
		t.Fatalf("version 2 %x: %v", v2, err)
	}
	if d.Sums != ext.Sums || d.Purchasers.Estimate() != 1 || d.KeySessions != nil || d.FirstPurchasers != nil {
		t.Fatalf("decoded %+v", d)
	}
	m, _ := UnmarshalAggregate(v1)
	if err := m.Merge(d); err != nil {
		t.Fatal(err)
	}
	if m.Events != 3 || m.Sums[SumPurchaseRevenue] != 12_500_000 || m.Purchasers.Estimate() != 1 || m.Users.Estimate() != 1 {
		t.Fatalf("merged %+v", m)
	}
	// Reusing a decoded aggregate for a version-1 encoding clears what
	// version 2 set.
	if err := d.UnmarshalFrom(v1); err != nil || d.Sums != ([NumSums]int64{}) || d.Purchasers != nil {
		t.Fatalf("reused %+v %v", d, err)
	}
	for _, bad := range [][]byte{
		append([]byte{2, 0, 0, 0, 1, 0}, v1[4:]...), // a sum said present with the value 0
		append([]byte{2, 0, 0, 0, 0x80, 0x40}, 0),   // a sum mask beyond the sums
	} {
		if _, err := UnmarshalAggregate(bad); err == nil {
			t.Errorf("corrupt %x accepted", bad)
		}
	}
}

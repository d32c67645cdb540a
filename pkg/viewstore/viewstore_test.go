package viewstore

import "testing"

func TestSeries(t *testing.T) {
	for _, tc := range []struct {
		property string
		part     int
	}{{"p", 0}, {"G-123", 7}, {"", 12}, {"a/b", 63}} {
		p, part, ok := ParseSeries(SeriesOf(tc.property, tc.part))
		if !ok || p != tc.property || part != tc.part {
			t.Errorf("ParseSeries(SeriesOf(%q, %d)) = %q, %d, %v", tc.property, tc.part, p, part, ok)
		}
	}
	for _, bad := range []string{"p", "p\x00", "p\x00x", "p\x00-1"} {
		if _, _, ok := ParseSeries(bad); ok {
			t.Errorf("ParseSeries(%q) ok", bad)
		}
	}
	if ShardOf("p") < 0 || ShardOf("p") >= Shards {
		t.Error("shard out of range")
	}
}

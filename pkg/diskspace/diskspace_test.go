package diskspace

import (
	"errors"
	"testing"
	"time"
)

func TestGuard(t *testing.T) {
	free := int64(100 << 20)
	var fail error
	calls := 0
	g := New("/data", 64<<20)
	g.statfs = func(string) (int64, error) { calls++; return free, fail }
	tests := []struct {
		name    string
		free    int64
		fail    error
		wantLow bool
	}{
		{"above the reserve", 100 << 20, nil, false},
		{"at the reserve", 64 << 20, nil, false},
		{"below the reserve", 63 << 20, nil, true},
		{"empty", 0, nil, true},
		{"measurement failed", 0, errors.New("statfs: EIO"), false},
		{"freed again", 1 << 30, nil, false},
	}
	for _, tt := range tests {
		free, fail = tt.free, tt.fail
		g.at = time.Time{} // measure now
		err := g.Check()
		if got := errors.Is(err, ErrLow); got != tt.wantLow {
			t.Errorf("%s: Check() = %v, want low %v", tt.name, err, tt.wantLow)
		}
	}
	// Measurements are reused for a while.
	before := calls
	for range 10 {
		_ = g.Check()
	}
	if calls != before {
		t.Errorf("Check measured %d times within the refresh interval", calls-before)
	}
	if err := New("/x", 0).Check(); err != nil {
		t.Errorf("a zero reserve failed: %v", err)
	}
	var nilGuard *Guard
	if err := nilGuard.Check(); err != nil {
		t.Errorf("nil guard: %v", err)
	}
	if err := New(t.TempDir(), 1).Check(); err != nil {
		t.Errorf("a real directory with 1 byte reserved: %v", err)
	}
}

package collect

import (
	"strings"
	"testing"
	"time"
)

// TestConfigValidate: zero fields are defaults, negative ones and a burst
// below a full batch are errors naming the field.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string // "" for valid
	}{
		{Config{}, ""},
		{Config{Rate: 10, Burst: 500, Limits: Limits{MaxEvents: 500}}, ""},
		{Config{Rate: -1}, "Rate is -1"},
		{Config{Burst: -1}, "Burst is -1"},
		{Config{MaxInFlight: -1}, "MaxInFlight"},
		{Config{AppendTimeout: -time.Second}, "AppendTimeout is -1s"},
		{Config{MaxAppends: -2}, "MaxAppends"},
		{Config{Limits: Limits{MaxParams: -1}}, "Limits.MaxParams"},
		{Config{Limits: Limits{MaxPast: -time.Hour}}, "Limits.MaxPast"},
		{Config{Burst: 100}, "Burst 100 is below Limits.MaxEvents 500"},
		{Config{Burst: 100, Limits: Limits{MaxEvents: 200}}, "Burst 100 is below Limits.MaxEvents 200"},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: Validate() = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	d := Config{}.withDefaults()
	if d.Rate != DefaultRate || d.MaxAppends != DefaultMaxAppends || d.AppendTimeout != DefaultAppendTimeout || d.Limits != DefaultLimits() || d.Burst < d.Limits.MaxEvents {
		t.Errorf("defaults: %+v", d)
	}
}

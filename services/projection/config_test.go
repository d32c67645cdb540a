package projection

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"zero Config", Config{}.Validate(), ""},
		{"stall check off", Config{StallThreshold: -1}.Validate(), ""},
		{"FlushInterval", Config{FlushInterval: -time.Millisecond}.Validate(), "FlushInterval is -1ms"},
		{"MaxPending", Config{MaxPending: -1}.Validate(), "MaxPending"},
		{"ReadBatch", Config{ReadBatch: -1}.Validate(), "ReadBatch"},
		{"Compaction", Config{Compaction: CompactionConfig{DayQuiet: -time.Second}}.Validate(), "Compaction.DayQuiet"},
		{"zero ServiceConfig", ServiceConfig{}.Validate(), ""},
		{"ServiceConfig", ServiceConfig{Settle: -time.Second}.Validate(), "Settle"},
	} {
		if tc.want == "" && tc.err != nil || tc.want != "" && (tc.err == nil || !strings.Contains(tc.err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, tc.err, tc.want)
		}
	}
	d := Config{StallThreshold: -1}.withDefaults()
	if d.Name != "traffic" || d.Version != "v1" || d.FlushInterval != 100*time.Millisecond || d.Layout == nil || d.StallThreshold != -1 || d.Compaction.Every != 2*time.Second {
		t.Errorf("defaults: %+v", d)
	}
}

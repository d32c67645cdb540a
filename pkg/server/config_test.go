package server

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Addr: "127.0.0.1:0"}, ""},
		{Config{}, "no Addr nor Listener"},
		{Config{Addr: "x:1", MaxBodyBytes: -1}, "MaxBodyBytes"},
		{Config{Addr: "x:1", Timeouts: Timeouts{Idle: -time.Second}}, "Timeouts.Idle is -1s"},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: Validate() = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if d := (Config{}).withDefaults(); d.MaxBodyBytes != DefaultMaxBodyBytes || d.Timeouts != DefaultTimeouts() || d.Logger == nil {
		t.Errorf("defaults: %+v", d)
	}
}

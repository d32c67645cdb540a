package kafkalog

import (
	"strings"
	"testing"
	"time"
)

// TestConfigValidate needs no brokers running: it checks the config only.
func TestConfigValidate(t *testing.T) {
	b := []string{"127.0.0.1:9092"}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Brokers: b}, ""},
		{Config{}, "no brokers configured"},
		{Config{Brokers: b, Linger: -time.Millisecond}, "Linger is -1ms"},
		{Config{Brokers: b, MaxBufferedBytes: -1}, "MaxBufferedBytes"},
		{Config{Brokers: b, HeartbeatInterval: 20 * time.Second, SessionTimeout: 10 * time.Second}, "heartbeat interval 20s must be below the session timeout 10s"},
		{Config{Brokers: b, HeartbeatInterval: time.Hour}, "must be below the session timeout"},
		{Config{Brokers: b, Compression: "brotli"}, `unknown compression "brotli"`},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: Validate() = %v, want %q", tc.cfg, err, tc.want)
		}
		if _, rerr := tc.cfg.ready(); (rerr == nil) != (err == nil) {
			t.Errorf("%+v: ready() = %v, Validate() = %v", tc.cfg, rerr, err)
		}
	}
	d := Config{Brokers: b}.withDefaults()
	if d.Topic != DefaultTopic || d.SessionTimeout != DefaultSessionTimeout || d.HeartbeatInterval != DefaultHeartbeatInterval || d.Linger != DefaultLinger {
		t.Errorf("defaults: %+v", d)
	}
}

package driver

import (
	"context"
	"errors"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/pkg/loadgen"
)

func TestServerAddrs(t *testing.T) {
	for _, tc := range []struct {
		in, target, base string
		ok               bool
	}{
		{"127.0.0.1:8080", "passthrough:///127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{"http://localhost:9000/", "passthrough:///localhost:9000", "http://localhost:9000", true},
		{"http://example", "passthrough:///example:80", "http://example:80", true},
		{"https://example", "", "", false},
		{"http://", "", "", false},
	} {
		target, base, err := ServerAddrs(tc.in)
		if (err == nil) != tc.ok || target != tc.target || base != tc.base {
			t.Errorf("ServerAddrs(%q) = %q, %q, %v; want %q, %q, ok=%v", tc.in, target, base, err, tc.target, tc.base, tc.ok)
		}
	}
}

func TestValidate(t *testing.T) {
	base := func() Config {
		c := Defaults()
		c.Keys = []loadgen.Keys{{PropertyID: "1", WriteKey: "sxw_a"}}
		c.Events = 10
		return c
	}
	spread := func(n int) *loadgen.Spread {
		s, err := loadgen.NewSpread(n, 1)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		ok     bool
	}{
		{"defaults", func(*Config) {}, true},
		{"no keys", func(c *Config) { c.Keys = nil }, false},
		{"no stop", func(c *Config) { c.Events = 0 }, false},
		{"a duration", func(c *Config) { c.Events, c.Duration = 0, time.Minute }, true},
		{"negative rate", func(c *Config) { c.Rate = -1 }, false},
		{"bad mode", func(c *Config) { c.Mode = "carrier-pigeon" }, false},
		{"no inflight", func(c *Config) { c.Inflight = 0 }, false},
		{"batch too big", func(c *Config) { c.Gen.BatchSize = 501 }, false},
		{"history and duration past 72h", func(c *Config) { c.Duration, c.Gen.History = time.Hour, 72*time.Hour }, false},
		{"time order without history", func(c *Config) { c.TimeOrder = true }, false},
		{"time order", func(c *Config) { c.TimeOrder, c.Gen.History = true, time.Hour }, true},
		{"bad server", func(c *Config) { c.Server = "https://x" }, false},
		{"no server, a connection", func(c *Config) { c.Server, c.Conn = "", &grpc.ClientConn{} }, true},
		{"no server, a connection, REST", func(c *Config) { c.Server, c.Conn, c.Mode = "", &grpc.ClientConn{}, REST }, false},
		{"freshness without a read key", func(c *Config) { f := DefaultFreshness(); c.Freshness = &f }, false},
		{"freshness", func(c *Config) { f := DefaultFreshness(); c.Freshness = &f; c.Keys[0].ReadKey = "sxr_a" }, true},
		{"freshness of a probe property", func(c *Config) {
			f := DefaultFreshness()
			f.Keys = &loadgen.Keys{WriteKey: "sxw_p", ReadKey: "sxr_p"}
			c.Freshness = &f
		}, true},
		{"freshness report", func(c *Config) {
			f := DefaultFreshness()
			f.Report = "weekly"
			c.Freshness = &f
			c.Keys[0].ReadKey = "sxr_a"
		}, false},
		{"spread, unary", func(c *Config) { c.Mode, c.Spread = Unary, spread(1) }, true},
		{"spread, stream", func(c *Config) { c.Spread = spread(1) }, false},
		{"spread of other keys", func(c *Config) { c.Mode, c.Spread = Unary, spread(3) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.change(&c)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// collector is a fault-injecting CollectService: it refuses some batches
// for good (INVALID_ARGUMENT), answers the first attempt of others
// UNAVAILABLE, breaks the first stream after a few batches, and keeps the
// event ids it acknowledged.
type collector struct {
	collectv1.UnimplementedCollectServiceServer
	mu       sync.Mutex
	attempts map[string]int  // by the batch's first event id
	stored   map[string]int  // acknowledged event ids, and how often
	keys     map[string]bool // write keys seen
	streams  int
}

func newCollector() *collector {
	return &collector{attempts: map[string]int{}, stored: map[string]int{}, keys: map[string]bool{}}
}

// verdict answers a batch: nil, or its error's code and message.
func (c *collector) verdict(key string, req *collectv1.CollectRequest) (codes.Code, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys[key] = true
	if len(req.Events) == 0 {
		return codes.InvalidArgument, "no events"
	}
	id := req.Events[0].EventId
	c.attempts[id]++
	h := fnv.New32a()
	h.Write([]byte(id))
	switch n := h.Sum32(); {
	case n%7 == 0:
		return codes.InvalidArgument, "refused for good"
	case n%3 == 0 && c.attempts[id] == 1:
		return codes.Unavailable, "try again"
	}
	for _, e := range req.Events {
		c.stored[e.EventId]++
	}
	return codes.OK, ""
}

func bearer(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) > 0 {
		return strings.TrimPrefix(v[0], "Bearer ")
	}
	return ""
}

func (c *collector) Collect(ctx context.Context, req *collectv1.CollectRequest) (*collectv1.CollectResponse, error) {
	if code, msg := c.verdict(bearer(ctx), req); code != codes.OK {
		return nil, status.Error(code, msg)
	}
	return &collectv1.CollectResponse{Accepted: int32(len(req.Events))}, nil
}

func (c *collector) StreamCollect(s grpc.BidiStreamingServer[collectv1.StreamCollectRequest, collectv1.StreamCollectResponse]) error {
	c.mu.Lock()
	c.streams++
	breakAfter := 0
	if c.streams == 1 {
		breakAfter = 5 // the first stream breaks, its last batches unanswered
	}
	c.mu.Unlock()
	key := bearer(s.Context())
	for n := 1; ; n++ {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if n == breakAfter {
			return status.Error(codes.Unavailable, "the stream breaks")
		}
		resp := &collectv1.StreamCollectResponse{Sequence: req.Sequence}
		if code, msg := c.verdict(key, req.Batch); code != codes.OK {
			resp.Error = &collectv1.BatchError{Code: strings.ToUpper(codeName(code)), Message: msg}
		} else {
			resp.Accepted = int32(len(req.Batch.Events))
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

// ServeHTTP is POST /v1/collect.
func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req collectv1.CollectRequest
	if err := protojson.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch code, msg := c.verdict(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), &req); code {
	case codes.OK:
		w.Write([]byte(`{"accepted":1}`))
	case codes.Unavailable:
		http.Error(w, msg, http.StatusServiceUnavailable)
	default:
		http.Error(w, msg, http.StatusBadRequest)
	}
}

// TestDriver sends to the fault-injecting collector in every mode and
// checks that every batch ends acknowledged or rejected, that the retried
// and resent ones are acknowledged once they pass, and that the result and
// the truth add up.
func TestDriver(t *testing.T) {
	for _, mode := range []string{Stream, Unary, REST} {
		t.Run(mode, func(t *testing.T) {
			c := newCollector()
			cfg := Defaults()
			cfg.Mode, cfg.Events, cfg.Concurrency, cfg.Truth, cfg.Progress = mode, 2000, 4, true, 0
			cfg.Gen.BatchSize, cfg.Gen.History, cfg.Gen.End = 10, time.Hour, time.Now()
			cfg.Keys = []loadgen.Keys{{PropertyID: "p1", WriteKey: "sxw_1"}, {PropertyID: "p2", WriteKey: "sxw_2"}}
			if mode == REST {
				srv := httptest.NewServer(c)
				defer srv.Close()
				cfg.Server = srv.URL
			} else {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				gs := grpc.NewServer()
				collectv1.RegisterCollectServiceServer(gs, c)
				go gs.Serve(ln)
				defer gs.Stop()
				cfg.Server = ln.Addr().String()
			}
			d, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			res := d.Run(context.Background())
			if res.EventsSent != 2000 || res.EventsFailed != 0 || res.EventsAcked+res.EventsRejected != res.EventsSent {
				t.Fatalf("sent %d, acked %d, rejected %d, failed %d: every event should be acked or rejected (errors %q)",
					res.EventsSent, res.EventsAcked, res.EventsRejected, res.EventsFailed, res.Errors)
			}
			if res.EventsRejected == 0 || res.Retries == 0 {
				t.Errorf("rejected %d events, retried %d times: the collector refuses some and delays others", res.EventsRejected, res.Retries)
			}
			if mode == Stream && res.StreamErrors == 0 {
				t.Error("the broken stream was not counted")
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if got := int64(len(c.stored)); got != res.EventsAcked {
				t.Errorf("the collector stored %d distinct events, the driver counts %d acknowledged", got, res.EventsAcked)
			}
			if !c.keys["sxw_1"] || !c.keys["sxw_2"] || len(c.keys) != 2 {
				t.Errorf("write keys sent: %v", c.keys)
			}
			if tr := d.Truth().Report(); tr.Totals.EventCount != res.EventsAcked {
				t.Errorf("the truth holds %d events, %d were acknowledged", tr.Totals.EventCount, res.EventsAcked)
			}
			var text strings.Builder
			res.WriteText(&text)
			if !strings.Contains(text.String(), "rejected  ") || !strings.HasPrefix(text.String(), "loadgen: "+mode+" mode") {
				t.Errorf("text result:\n%s", text.String())
			}
		})
	}
}

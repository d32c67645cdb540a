package ackstream

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

func TestServe(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n        int
		inFlight int
		sendFail int // fail the send of this answer (-1: never)
		recvFail int // fail the receive at this request (-1: never)
		wantErr  bool
	}{
		{"in order despite random delays", 200, 8, -1, -1, false},
		{"one at a time", 20, 1, -1, -1, false},
		{"empty stream", 0, 4, -1, -1, false},
		{"send fails", 50, 4, 10, -1, true},
		{"receive fails", 50, 4, -1, 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := 0
			recv := func() (int, error) {
				if next == tc.recvFail {
					return 0, errors.New("broken")
				}
				if next == tc.n {
					return 0, io.EOF
				}
				next++
				return next - 1, nil
			}
			var got []int
			send := func(v int) error {
				if len(got) == tc.sendFail {
					return errors.New("gone")
				}
				got = append(got, v)
				return nil
			}
			var running, peak atomic.Int32
			handle := func(_ context.Context, v int) int {
				if r := running.Add(1); r > peak.Load() {
					peak.Store(r)
				}
				time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
				running.Add(-1)
				return v * 10
			}
			err := Serve(context.Background(), tc.inFlight, recv, send, handle)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if int(peak.Load()) > tc.inFlight {
				t.Fatalf("%d handled at once, bound %d", peak.Load(), tc.inFlight)
			}
			if tc.wantErr {
				return
			}
			if len(got) != tc.n {
				t.Fatalf("%d answers, want %d", len(got), tc.n)
			}
			for i, v := range got {
				if v != i*10 {
					t.Fatalf("answer %d is %d: out of order", i, v)
				}
			}
		})
	}
}

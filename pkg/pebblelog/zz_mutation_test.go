package pebblelog

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/eventlog/eventlogtest"
)

type mut struct {
	*Log
	kind string
	n    int
}

func (m *mut) Append(ctx context.Context, msgs []eventlog.Message) error {
	switch m.kind {
	case "rekey":
		out := make([]eventlog.Message, len(msgs))
		for i, x := range msgs {
			x.Key = append([]byte("x"), x.Key...)
			out[i] = x
		}
		msgs = out
	case "drop":
		m.n++
		if m.n%97 == 5 && len(msgs) > 1 {
			msgs = msgs[1:]
		}
	case "dup":
		m.n++
		if m.n%97 == 5 {
			msgs = append(msgs, msgs[0])
		}
	}
	return m.Log.Append(ctx, msgs)
}

func (m *mut) Read(ctx context.Context, p int32, off int64, max int) ([]eventlog.Record, error) {
	switch m.kind {
	case "nowait":
		end, _ := m.Log.EndOffset(ctx, p)
		if off >= end {
			return nil, nil
		}
	case "ignoremax":
		max = 1000
	case "ctxnil":
		end, _ := m.Log.EndOffset(ctx, p)
		if off >= end {
			r, err := m.Log.Read(ctx, p, off, max)
			if err != nil && ctx.Err() != nil {
				return nil, errors.New("other")
			}
			return r, err
		}
	case "closednowrap":
		r, err := m.Log.Read(ctx, p, off, max)
		if errors.Is(err, eventlog.ErrClosed) {
			err = errors.New("closed")
		}
		return r, err
	}
	r, err := m.Log.Read(ctx, p, off, max)
	for i := range r {
		switch m.kind {
		case "noheaders":
			r[i].Headers = nil
		case "zerots":
			r[i].Timestamp = time.Time{}
		case "rekey":
			r[i].Key = r[i].Key[1:]
		case "badpart":
			r[i].Partition = 0
		}
	}
	return r, err
}

func (m *mut) EndOffset(ctx context.Context, p int32) (int64, error) {
	e, err := m.Log.EndOffset(ctx, p)
	if m.kind == "endplus" && e > 0 {
		e++
	}
	return e, err
}

func (m *mut) Committed(ctx context.Context, g string, p int32) (int64, error) {
	v, err := m.Log.Committed(ctx, g, p)
	if m.kind == "committednf" && v == 0 {
		return 0, errors.New("not found")
	}
	return v, err
}

func (m *mut) Run(ctx context.Context, g string, claim func(context.Context, int32) error) error {
	switch m.kind {
	case "runreturns":
		go m.Log.Run(ctx, g, claim)
		return nil
	case "claimtwice":
		return m.Log.Run(ctx, g, func(ctx context.Context, p int32) error {
			if p == 0 {
				go claim(ctx, p)
			}
			return claim(ctx, p)
		})
	case "noctxend":
		return m.Log.Run(ctx, g, func(_ context.Context, p int32) error {
			return claim(context.Background(), p)
		})
	}
	return m.Log.Run(ctx, g, claim)
}

func TestMutations(t *testing.T) {
	kind := os.Getenv("MUT")
	if kind == "" {
		t.Skip()
	}
	eventlogtest.Run(t, func(t *testing.T, partitions int) func() eventlog.Log {
		dir := t.TempDir()
		return func() eventlog.Log {
			d := dir
			if kind == "freshdir" {
				d = t.TempDir()
			}
			l, err := Open(d, Options{Partitions: partitions, Logger: quiet})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return &mut{Log: l, kind: kind}
		}
	})
}

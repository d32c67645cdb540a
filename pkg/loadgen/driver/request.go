package driver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/pkg/loadgen"
)

func (d *Driver) unaryWorker(ctx context.Context, w int, h *lockedHist) {
	p := w % len(d.sources)
	conn := d.conns[w%len(d.conns)]
	d.requestLoop(ctx, p, h, func(e *entry) (bool, string, time.Duration) {
		cctx, cancel := context.WithTimeout(d.authCtx(ctx, e.b.Property), d.cfg.Timeout)
		defer cancel()
		var resp collectv1.CollectResponse
		err := conn.Invoke(cctx, collectMethod, rawFrame(e.body), &resp, grpc.ForceCodecV2(codec{}))
		if err == nil {
			return true, "", 0
		}
		st := status.Convert(err)
		code := strings.ToUpper(codeName(st.Code()))
		msg := code + ": " + st.Message()
		if retriable(code) || st.Code() == codes.Canceled && ctx.Err() == nil {
			return false, msg, backoff(e.attempts)
		}
		return false, msg, -1
	})
}

func codeName(c codes.Code) string {
	s := c.String()
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (d *Driver) restWorker(ctx context.Context, w int, h *lockedHist) {
	p := w % len(d.sources)
	url := d.httpBase + "/v1/collect"
	d.requestLoop(ctx, p, h, func(e *entry) (bool, string, time.Duration) {
		auth := "Bearer " + d.cfg.Keys[e.b.Property].WriteKey
		cctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(cctx, http.MethodPost, url, bytes.NewReader(e.body))
		if err != nil {
			return false, err.Error(), -1
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := d.http.Do(req)
		if err != nil {
			return false, err.Error(), backoff(e.attempts)
		}
		var body []byte
		if resp.StatusCode == http.StatusOK {
			_, _ = io.Copy(io.Discard, resp.Body)
		} else {
			body, _ = io.ReadAll(io.LimitReader(resp.Body, 512))
		}
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return true, "", 0
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			wait := backoff(e.attempts)
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = min(time.Duration(s)*time.Second, 2*time.Second)
			}
			return false, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body)), wait
		}
		return false, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body)), -1
	})
}

// requestLoop sends property p's batches one request at a time. send
// reports success, or an error message with the wait before a retry (-1:
// do not retry).
func (d *Driver) requestLoop(ctx context.Context, p int, h *lockedHist, send func(*entry) (bool, string, time.Duration)) {
	for {
		e := d.take(ctx, p)
		if e == nil {
			return
		}
		for {
			e.attempts++
			e.sent = time.Now()
			ok, msg, wait := send(e)
			if ok {
				now := time.Now()
				h.Histogram(func(hh *loadgen.Histogram) { d.acked(hh, e, now) })
				break
			}
			if wait < 0 {
				d.rejected(e, msg)
				break
			}
			if e.attempts >= d.cfg.Retries || ctx.Err() != nil {
				d.failed(e, msg)
				break
			}
			d.retries.Add(1)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
	}
}

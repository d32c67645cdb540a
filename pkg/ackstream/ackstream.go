// Package ackstream serves a bidirectional stream whose every request gets
// one answer: requests are handled concurrently (up to a bound) and their
// answers are sent in request order, as StreamCollect's acknowledgements.
package ackstream

import (
	"context"
	"errors"
	"io"
	"sync"
)

// Serve receives with recv until io.EOF, handles each request on its own
// goroutine (at most maxInFlight at once) and sends the answers in the order
// the requests came. It returns when every answer was sent, with the first
// receive or send error (io.EOF is the normal end, not an error).
func Serve[Req, Resp any](ctx context.Context, maxInFlight int, recv func() (Req, error), send func(Resp) error, handle func(context.Context, Req) Resp) error {
	maxInFlight = max(1, maxInFlight)
	pending := make(chan chan Resp, maxInFlight) // answers to send, in order
	slots := make(chan struct{}, maxInFlight)    // requests being handled
	sendErr := make(chan error, 1)
	go func() {
		defer close(sendErr)
		for ch := range pending {
			if err := send(<-ch); err != nil {
				sendErr <- err
				for range pending { // let the receiver finish
				}
				return
			}
		}
	}()
	var wg sync.WaitGroup
	var recvErr error
	for recvErr == nil {
		req, err := recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				recvErr = err
			}
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			recvErr = ctx.Err()
			continue
		}
		ch := make(chan Resp, 1)
		select {
		case pending <- ch:
		case <-ctx.Done():
			<-slots
			recvErr = ctx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch <- handle(ctx, req)
			<-slots
		}()
	}
	wg.Wait()
	close(pending)
	if err := <-sendErr; err != nil {
		return err
	}
	return recvErr
}

package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// limitedBody is a REST request's body, bounded at limit bytes, that
// remembers whether the client sent more: grpc-gateway turns any error of
// its body into InvalidArgument (400), and restError answers 413 instead
// when the body was over the limit (tooLarge).
type limitedBody struct {
	io.ReadCloser
	limit    int64
	exceeded bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooBig *http.MaxBytesError
	if err != nil && errors.As(err, &tooBig) {
		b.exceeded = true
	}
	return n, err
}

// limitBody bounds the body of REST requests at s.cfg.MaxBodyBytes, and
// the time it may take to arrive at s.cfg.Timeouts.Body. A body
// announced larger (Content-Length) is refused before it is read; one that
// turns out larger stops being read at the limit. Either is answered 413
// Request Entity Too Large, in the REST gateway's error shape with the
// code RESOURCE_EXHAUSTED (as Connect and gRPC refuse such a message) and
// a message giving the limit.
func (s *Server) limitBody(h http.Handler) http.Handler {
	limit := s.cfg.MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The body must arrive within Timeouts.Body of the headers.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.Timeouts.Body))
		body := r.Body
		lb := &limitedBody{ReadCloser: http.MaxBytesReader(w, body, limit), limit: limit}
		r.Body = lb
		if r.ContentLength > limit {
			lb.exceeded = true
			// A client still sending its body when the connection closes
			// gets a reset, not the answer: up to drainBytes of it is read
			// and dropped first (within the body's timeout). A larger one
			// is cut off, and the connection is not reused.
			if r.ContentLength > drainBytes {
				w.Header().Set("Connection", "close")
			} else if _, err := io.Copy(io.Discard, io.LimitReader(body, drainBytes)); err != nil {
				w.Header().Set("Connection", "close")
			}
			s.restError(r.Context(), s.restMux, restMarshaler, w, r, status.Error(codes.InvalidArgument, "body too large"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// drainBytes is the largest refused body limitBody reads to the end, so
// that its client reads the 413 instead of a reset connection.
const drainBytes = 8 << 20

// tooLarge returns the error to answer instead of err when r's body was over
// its limit (see limitBody), else err.
func tooLarge(r *http.Request, err error) error {
	lb, ok := r.Body.(*limitedBody)
	if !ok || !lb.exceeded {
		return err
	}
	return &runtime.HTTPStatusError{
		HTTPStatus: http.StatusRequestEntityTooLarge,
		Err:        status.Error(codes.ResourceExhausted, fmt.Sprintf("the request body is larger than the limit of %d bytes", lb.limit)),
	}
}

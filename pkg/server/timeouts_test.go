package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
)

// TestSlowClients: a client that sends its headers slowly (slowloris), one
// that sends a REST body slowly and an idle keep-alive connection are each
// disconnected within their timeout.
func TestSlowClients(t *testing.T) {
	const bound = 300 * time.Millisecond
	rt := Route{
		Pattern:   "POST /v1/echo",
		Procedure: "/test.v1.Echo/Echo",
		Decode:    func(body []byte) (any, error) { return string(body), nil },
		Call: func(ctx context.Context, r *http.Request, req any) (proto.Message, error) {
			return &errdetails.ErrorInfo{Reason: req.(string)}, nil
		},
	}
	authn := func(ctx context.Context, _ string, _ http.Header) (context.Context, error) { return ctx, nil }
	srv := New(Config{Addr: "127.0.0.1:0", Authenticate: authn, Timeouts: Timeouts{ReadHeader: bound, Body: bound, Idle: bound}}, []Service{{
		Name:   "test.v1.Echo",
		Mount:  func(...connect.HandlerOption) (string, http.Handler) { return "/test.v1.Echo/", http.NotFoundHandler() },
		Routes: []Route{rt},
	}}, nil)
	serveTest(t, srv)

	// drip writes s a byte every 50 ms until the server closes the
	// connection, and returns how long that took (failing after 5 s).
	drip := func(t *testing.T, c net.Conn, s string) time.Duration {
		t.Helper()
		start := time.Now()
		closed := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, c) // until the server closes
			close(closed)
		}()
		for i := 0; ; i++ {
			select {
			case <-closed:
				return time.Since(start)
			case <-time.After(50 * time.Millisecond):
			}
			if time.Since(start) > 5*time.Second {
				t.Fatal("still connected after 5s")
			}
			_, _ = c.Write([]byte{s[i%len(s)]})
		}
	}
	dial := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	const slack = time.Second

	t.Run("headers", func(t *testing.T) {
		c := dial(t)
		_, _ = io.WriteString(c, "POST /v1/echo HTTP/1.1\r\nHost: x\r\n")
		if d := drip(t, c, "X-Slow: aaaa\r\n"); d > bound+slack {
			t.Fatalf("disconnected after %v, want within %v", d, bound+slack)
		}
	})
	t.Run("body", func(t *testing.T) {
		c := dial(t)
		_, _ = io.WriteString(c, "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
		if d := drip(t, c, "x"); d > bound+slack {
			t.Fatalf("disconnected after %v, want within %v", d, bound+slack)
		}
	})
	t.Run("idle", func(t *testing.T) {
		c := dial(t)
		_, _ = io.WriteString(c, "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n\"hi\"")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "hi") {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read after the response")
		}
		if d := time.Since(start); d > bound+slack {
			t.Fatalf("idle connection closed after %v, want within %v", d, bound+slack)
		}
	})
}

package server

import (
	"context"
	"net"
	"sync"
)

// pipeListener is the server's in-process address: the REST gateway's
// streaming calls dial it (over h2c, whatever the public listener speaks),
// so they need neither the network nor a client certificate.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

// loopbackAddr is the address both ends of a piped connection report:
// streaming REST calls come from loopbackPeer, as the unary ones (inproc).
type loopbackAddr struct{}

func (loopbackAddr) Network() string { return "tcp" }
func (loopbackAddr) String() string  { return loopbackPeer }

type pipeConn struct{ net.Conn }

func (pipeConn) LocalAddr() net.Addr  { return loopbackAddr{} }
func (pipeConn) RemoteAddr() net.Addr { return loopbackAddr{} }

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return loopbackAddr{} }

// dial connects to the listener (grpc.WithContextDialer).
func (l *pipeListener) dial(ctx context.Context, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- pipeConn{server}:
		return pipeConn{client}, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

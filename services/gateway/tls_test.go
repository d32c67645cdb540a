package gateway

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"

	projectionv1 "github.com/sextant-analytics/sextant/gen/sextant/projection/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/projection/v1/projectionv1connect"
	"github.com/sextant-analytics/sextant/pkg/server"
	"github.com/sextant-analytics/sextant/pkg/tlsfiles"
	"github.com/sextant-analytics/sextant/pkg/tlsfiles/tlsfilestest"
)

type projections struct {
	projectionv1connect.UnimplementedProjectionServiceHandler
}

func (projections) ListProjections(context.Context, *connect.Request[projectionv1.ListProjectionsRequest]) (*connect.Response[projectionv1.ListProjectionsResponse], error) {
	return connect.NewResponse(&projectionv1.ListProjectionsResponse{Projections: []*projectionv1.Projection{{Name: "traffic"}}}), nil
}

// TestMutualTLS: a backend that requires client certificates answers the
// gateway that presents one signed by its CA and refuses the one that
// presents none; the backend's certificate is verified for the host of
// its address (localhost here, not the gateway's internal target).
func TestMutualTLS(t *testing.T) {
	ca := tlsfilestest.NewCA(t, "ca")
	backendPair := ca.Issue(t, "backend", "localhost")
	gatewayPair := ca.Issue(t, "gateway")
	serverTLS, err := tlsfiles.Files{CA: ca.CertFile, Cert: backendPair.CertFile, Key: backendPair.KeyFile}.ServerConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	backend := server.New(server.Config{Addr: "localhost:0", TLS: serverTLS}, []server.Service{{
		Name: projectionv1connect.ProjectionServiceName,
		Mount: func(o ...connect.HandlerOption) (string, http.Handler) {
			return projectionv1connect.NewProjectionServiceHandler(projections{}, o...)
		},
	}}, nil)
	if err := backend.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- backend.Serve(ctx, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	_, port, _ := net.SplitHostPort(backend.Addr())
	addr := net.JoinHostPort("localhost", port)

	list := func(files tlsfiles.Files) error {
		t.Helper()
		tc, err := files.ClientConfig(nil)
		if err != nil {
			t.Fatal(err)
		}
		g, err := New(Config{Projection: []string{addr}, TLS: tc})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		resp, err := g.ListProjections(ctx, connect.NewRequest(&projectionv1.ListProjectionsRequest{}))
		if err == nil && (len(resp.Msg.Projections) != 1 || resp.Msg.Projections[0].Name != "traffic") {
			t.Fatalf("answer %v", resp.Msg)
		}
		return err
	}
	if err := list(tlsfiles.Files{CA: ca.CertFile, Cert: gatewayPair.CertFile, Key: gatewayPair.KeyFile}); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	err = list(tlsfiles.Files{CA: ca.CertFile})
	if err == nil {
		t.Fatal("without a client certificate, the backend answered")
	}
	if connect.CodeOf(err) != connect.Code(codes.Unavailable) {
		t.Errorf("without a client certificate: %v, want unavailable", err)
	}
	if err := list(tlsfiles.Files{}); err == nil {
		t.Fatal("in cleartext, the TLS backend answered")
	}
}

package bench

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
)

// Noop is the baseline authorization server: it allows every request without looking at it,
// with an OkResponse that adds no header. Whatever it costs per Check is the cost of gRPC (or
// HTTP) itself, the floor no real server can go below.
type Noop struct {
	authv3.UnimplementedAuthorizationServer
	checks atomic.Int64
}

// Check allows.
func (n *Noop) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	n.checks.Add(1)
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
	}, nil
}

// ServeHTTP answers 200 to every request, after reading its body as an authorization server must.
func (n *Noop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.checks.Add(1)
	io.Copy(io.Discard, r.Body)
	w.WriteHeader(http.StatusOK)
}

// Checks is how many requests, gRPC and HTTP, have been answered.
func (n *Noop) Checks() int64 { return n.checks.Load() }

package bench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// startGRPC serves srv on a loopback port for the test.
func startGRPC(t *testing.T, srv authv3.AuthorizationServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, srv)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

func dial(t *testing.T, addr string, conns int) *GRPCClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := DialGRPC(ctx, addr, conns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRunCountsRequestsAgainstNoop(t *testing.T) {
	noop := &Noop{}
	c := dial(t, startGRPC(t, noop), 3)
	frame, err := proto.Marshal(&authv3.CheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), Load{Workers: 20, Requests: 1000, PID: 0}, c.Sender(func(uint64) []byte { return frame }))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 1000 || r.Latency.Count() != 1000 || r.Issued != 1000 || noop.Checks() != 1000 {
		t.Errorf("requests %d, latencies %d, issued %d, server saw %d; want 1000 each", r.Requests, r.Latency.Count(), r.Issued, noop.Checks())
	}
	if r.Errors != 0 || r.Denied != 0 || r.Elapsed <= 0 || r.RPS() <= 0 || r.Latency.Quantile(0.5) <= 0 {
		t.Errorf("errors %d denied %d elapsed %v rps %v p50 %v", r.Errors, r.Denied, r.Elapsed, r.RPS(), r.Latency.Quantile(0.5))
	}
}

func TestRunDurationWithWarmup(t *testing.T) {
	noop := &Noop{}
	c := dial(t, startGRPC(t, noop), 1)
	frame, _ := proto.Marshal(&authv3.CheckRequest{})
	l := Load{Workers: 8, Warmup: 100 * time.Millisecond, Duration: 200 * time.Millisecond, PID: 0}
	r, err := Run(context.Background(), l, c.Sender(func(uint64) []byte { return frame }))
	if err != nil {
		t.Fatal(err)
	}
	// Warmup requests reached the server but are not counted.
	if r.Requests == 0 || uint64(r.Requests) >= r.Issued || uint64(noop.Checks()) != r.Issued {
		t.Errorf("measured %d of %d issued; server saw %d", r.Requests, r.Issued, noop.Checks())
	}
	// The lower bound is exact; the upper one only catches a run that ignores its duration
	// (a loaded CI machine may add scheduling delay, never a second duration).
	if r.Elapsed < l.Duration || r.Elapsed > 2*l.Duration+time.Second {
		t.Errorf("elapsed %v, want about %v", r.Elapsed, l.Duration)
	}
	if uint64(r.Requests) != r.Latency.Count() {
		t.Errorf("%d requests, %d latencies", r.Requests, r.Latency.Count())
	}
}

func TestRunOutcomes(t *testing.T) {
	// Every 10th call fails, every other 7th is denied: with a request count and no warmup,
	// exactly the calls 0..n-1 are measured.
	send := func(_ context.Context, _ int, seq uint64) error {
		switch {
		case seq%10 == 0:
			return errors.New("broken")
		case seq%7 == 0:
			return &DeniedError{Detail: "no"}
		}
		return nil
	}
	const n = 700
	var wantErr, wantDeny int64
	for s := range uint64(n) {
		switch {
		case s%10 == 0:
			wantErr++
		case s%7 == 0:
			wantDeny++
		}
	}
	r, err := Run(context.Background(), Load{Workers: 7, Requests: n}, send)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != n || r.Errors != wantErr || r.Denied != wantDeny {
		t.Errorf("requests %d errors %d denied %d; want %d %d %d", r.Requests, r.Errors, r.Denied, n, wantErr, wantDeny)
	}
	if r.FirstError == nil || r.FirstError.Error() != "broken" || r.FirstDeny != "no" {
		t.Errorf("first error %v, first deny %q", r.FirstError, r.FirstDeny)
	}
}

func TestRunRejectsAmbiguousLoad(t *testing.T) {
	send := func(context.Context, int, uint64) error { return nil }
	for _, l := range []Load{{}, {Duration: time.Second, Requests: 1}} {
		if _, err := Run(context.Background(), l, send); err == nil {
			t.Errorf("Run(%+v) succeeded", l)
		}
	}
}

func TestRunStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	send := func(ctx context.Context, _ int, _ uint64) error { <-ctx.Done(); return ctx.Err() }
	if _, err := Run(ctx, Load{Workers: 2, Duration: time.Hour}, send); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
}

// denyAll answers every Check with a denial, as certbind does.
type denyAll struct {
	authv3.UnimplementedAuthorizationServer
}

func (denyAll) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: 16, Message: "token_unbound"}}, nil
}

func TestGRPCDenial(t *testing.T) {
	c := dial(t, startGRPC(t, denyAll{}), 1)
	frame, _ := proto.Marshal(&authv3.CheckRequest{})
	var de *DeniedError
	if err := c.Check(context.Background(), 0, frame); !errors.As(err, &de) || de.Detail != "gRPC status 16: token_unbound" {
		t.Errorf("err = %v, want a denial with the status message", err)
	}
}

func TestHTTPAgainstNoop(t *testing.T) {
	noop := &Noop{}
	ts := httptest.NewServer(noop)
	defer ts.Close()
	c := NewHTTPClient(ts.Listener.Addr().String(), 10)
	defer c.Close()
	req := c.Prepare(Request{Method: http.MethodPost, Path: "/oauth2/token", Mode: ModeClientAuth,
		Headers: map[string]string{"content-length": "3", "x-forwarded-client-cert": "Hash=00"}, Body: []byte("a=b")})
	r, err := Run(context.Background(), Load{Workers: 10, Requests: 300}, c.Sender(func(uint64) *HTTPRequest { return req }))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 300 || r.Errors != 0 || r.Denied != 0 || noop.Checks() != 300 {
		t.Errorf("requests %d errors %d (%v) denied %d, server saw %d", r.Requests, r.Errors, r.FirstError, r.Denied, noop.Checks())
	}
}

func TestHTTPOutcomes(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(ModeHeader) != string(ModeBoundToken) || r.Host != Host || r.URL.Path != "/api/x" {
			http.Error(w, "bad request shape", http.StatusBadRequest)
			return
		}
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("x-certbind-reason", "token_missing")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer ts.Close()
	c := NewHTTPClient(ts.Listener.Addr().String(), 1)
	defer c.Close()
	ctx := context.Background()
	ok := Request{Method: http.MethodGet, Path: "/api/x", Mode: ModeBoundToken, Headers: map[string]string{"authorization": "Bearer t"}}
	if err := c.Do(ctx, c.Prepare(ok)); err != nil {
		t.Errorf("allowed request: %v", err)
	}
	var de *DeniedError
	noToken := Request{Method: http.MethodGet, Path: "/api/x", Mode: ModeBoundToken}
	if err := c.Do(ctx, c.Prepare(noToken)); !errors.As(err, &de) || de.Detail != "HTTP 401: token_missing" {
		t.Errorf("denied request: %v", err)
	}
	bad := Request{Method: http.MethodGet, Path: "/elsewhere", Mode: ModeBoundToken}
	if err := c.Do(ctx, c.Prepare(bad)); err == nil || errors.As(err, &de) {
		t.Errorf("400: err = %v, want a failure that is not a denial", err)
	}
}

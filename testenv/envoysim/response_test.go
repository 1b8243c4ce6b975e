package envoysim_test

import (
	"net/http"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func hvo(k, v string, a corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, AppendAction: a}
}

func legacy(k, v string, appendValue bool) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, Append: wrapperspb.Bool(appendValue)}
}

// TestOKResponse: ok_response header mutations reach the upstream request with Envoy's
// semantics for each append_action and for the legacy append flag; headers_to_remove runs after
// the additions and cannot remove pseudo-headers or host; response_headers_to_add reach the
// client.
func TestOKResponse(t *testing.T) {
	w := newWorld(t)
	fake := &fakeAuthz{respond: func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return &authv3.CheckResponse{Status: okStatus(), HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{
				hvo("x-overwrite", "new", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("x-add", "new", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
				hvo("x-absent", "new", corev3.HeaderValueOption_ADD_IF_ABSENT),
				hvo("x-absent-missing", "new", corev3.HeaderValueOption_ADD_IF_ABSENT),
				hvo("x-if-exists", "new", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
				hvo("x-if-exists-missing", "new", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
				legacy("x-legacy-set", "new", false),
				legacy("x-legacy-append", "new", true),
				hvo("x-added-then-removed", "new", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			},
			HeadersToRemove:      []string{"x-added-then-removed", "x-client-removed", ":path", "host", ":authority"},
			ResponseHeadersToAdd: []*corev3.HeaderValueOption{hvo("x-to-client", "1", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD), legacy("x-origin", "2", true)},
		}}}, nil
	}}
	up := newUpstream(t)
	_, addr := start(t, w.config(shippedSummary(t), serveAuthz(t, fake), up))
	resp := w.client(w.svc, false).do(t, newRequest(t, http.MethodGet, "https://"+addr+"/internal/x", nil,
		"X-Overwrite", "old", "X-Overwrite", "older",
		"X-Add", "old",
		"X-Absent", "old",
		"X-If-Exists", "old",
		"X-Legacy-Set", "old",
		"X-Legacy-Append", "old",
		"X-Client-Removed", "old"))
	if resp.status != http.StatusOK {
		t.Fatalf("status %d", resp.status)
	}
	got := up.last(t)
	want := map[string][]string{
		"X-Overwrite":          {"new"},
		"X-Add":                {"old", "new"},
		"X-Absent":             {"old"},
		"X-Absent-Missing":     {"new"},
		"X-If-Exists":          {"new"},
		"X-If-Exists-Missing":  nil,
		"X-Legacy-Set":         {"new"},
		"X-Legacy-Append":      {"old,new"},
		"X-Added-Then-Removed": nil,
		"X-Client-Removed":     nil,
	}
	for k, v := range want {
		if strings.Join(got.header.Values(k), "|") != strings.Join(v, "|") {
			t.Errorf("%s = %q, want %q", k, got.header.Values(k), v)
		}
	}
	if got.uri != "/internal/x" || got.host != addr {
		t.Errorf("pseudo-headers removed: %s %s", got.uri, got.host)
	}
	if resp.header.Get("X-To-Client") != "1" || strings.Join(resp.header.Values("X-Origin"), "|") != "1|2" {
		t.Errorf("response headers %v", resp.header)
	}
}

// TestNotOK: a denial is the denied_response (403 when its status is unset) and never reaches
// the upstream; an error_response or a failed RPC is status_on_error.
func TestNotOK(t *testing.T) {
	w := newWorld(t)
	s := shippedSummary(t)
	denied := func(code int32, den *authv3.DeniedHttpResponse) *authv3.CheckResponse {
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: code}, HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: den}}
	}
	tests := []struct {
		name   string
		resp   *authv3.CheckResponse
		err    error
		status int
		body   string
		header map[string]string
	}{
		{name: "denied with everything", resp: denied(int32(codes.Unauthenticated), &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized},
			Headers: []*corev3.HeaderValueOption{
				hvo("www-authenticate", `Bearer error="invalid_token"`, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo("content-type", "application/json", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			},
			Body: `{"error":"invalid_token"}`,
		}), status: 401, body: `{"error":"invalid_token"}`,
			header: map[string]string{"Www-Authenticate": `Bearer error="invalid_token"`, "Content-Type": "application/json", "Server": "envoy"}},
		{name: "denied without status", resp: denied(int32(codes.PermissionDenied), &authv3.DeniedHttpResponse{Body: "no"}),
			status: 403, body: "no", header: map[string]string{"Content-Type": "text/plain"}},
		{name: "denied, nothing else", resp: &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)}},
			status: 403, body: "", header: map[string]string{"Content-Type": ""}},
		{name: "error_response with status", resp: &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.Internal)},
			HttpResponse: &authv3.CheckResponse_ErrorResponse{ErrorResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_BadGateway}, Body: "later"}}},
			status: 502, body: "later"},
		{name: "error_response without status", resp: &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.Internal)},
			HttpResponse: &authv3.CheckResponse_ErrorResponse{ErrorResponse: &authv3.DeniedHttpResponse{}}},
			status: int(s.StatusOnError)},
		{name: "gRPC error", err: status.Error(codes.Unavailable, "down"), status: int(s.StatusOnError)},
		{name: "OK with an invalid header", resp: &authv3.CheckResponse{Status: okStatus(), HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{hvo("x-bad", "a\r\nb", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)}}}},
			status: 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeAuthz{respond: func(*authv3.CheckRequest) (*authv3.CheckResponse, error) { return tc.resp, tc.err }}
			up := newUpstream(t)
			_, addr := start(t, w.config(s, serveAuthz(t, fake), up))
			resp := w.client(w.svc, false).do(t, newRequest(t, http.MethodGet, "https://"+addr+"/api/x", nil))
			if resp.status != tc.status || resp.body != tc.body {
				t.Fatalf("%d %q, want %d %q", resp.status, resp.body, tc.status, tc.body)
			}
			for k, v := range tc.header {
				if resp.header.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, resp.header.Get(k), v)
				}
			}
			if up.count() != 0 {
				t.Error("upstream called")
			}
		})
	}
}

// TestPathHandling: normalize_path, merge_slashes and UNESCAPE_AND_REDIRECT as in envoy.yaml,
// applied before routing, so the route (and certbind_mode) is chosen on the path the upstream
// gets.
func TestPathHandling(t *testing.T) {
	w := newWorld(t)
	fake := &fakeAuthz{}
	up := newUpstream(t)
	_, addr := start(t, w.config(shippedSummary(t), serveAuthz(t, fake), up))
	tests := []struct {
		target   string
		status   int
		path     string // what the check and the upstream see
		mode     string
		location string
	}{
		{target: "/api/../internal/x", status: 200, path: "/internal/x", mode: "identity"},
		{target: "/api/%2e%2E/internal/x", status: 200, path: "/internal/x", mode: "identity"},
		{target: "//internal//x/", status: 200, path: "/internal/x/", mode: "identity"},
		{target: `/api\..\internal\x`, status: 200, path: "/internal/x", mode: "identity"},
		{target: "/api/%7euser/%41?q=%41", status: 200, path: "/api/~user/A?q=%41", mode: "bound_token"},
		{target: "/api/a%2Fb?x=%2F", status: 307, location: "/api/a/b?x=%2F"},
		{target: "/internal/a%5c..%5c..%5capi", status: 307, location: "/api"},
		{target: "/api/%00", status: 400},
		{target: "/../../oauth2/token", status: 200, path: "/oauth2/token", mode: "client_auth"},
		{target: "/ap%69/x", status: 200, path: "/api/x", mode: "bound_token"},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			before := fake.count()
			resp := w.raw(t, addr, w.billing, tc.target)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != 200 {
				if resp.Header.Get("Location") != tc.location {
					t.Errorf("location %q, want %q", resp.Header.Get("Location"), tc.location)
				}
				if fake.count() != before {
					t.Error("checked")
				}
				return
			}
			h := fake.last(t).GetAttributes()
			if h.GetRequest().GetHttp().GetPath() != tc.path || h.GetContextExtensions()["certbind_mode"] != tc.mode {
				t.Errorf("check path %q mode %q", h.GetRequest().GetHttp().GetPath(), h.GetContextExtensions()["certbind_mode"])
			}
			if got := up.last(t).uri; got != tc.path {
				t.Errorf("upstream path %q", got)
			}
		})
	}
}

// TestAppendForward: with APPEND_FORWARD the client's header is kept and Envoy's element is
// appended last.
func TestAppendForward(t *testing.T) {
	w := newWorld(t)
	s := shippedSummary(t)
	s.ForwardMode = "APPEND_FORWARD"
	fake := &fakeAuthz{}
	up := newUpstream(t)
	_, addr := start(t, w.config(s, serveAuthz(t, fake), up))
	resp := w.client(w.billing, true).do(t, newRequest(t, http.MethodGet, "https://"+addr+"/internal/x", nil,
		"X-Forwarded-Client-Cert", "By=spiffe://first;Hash=aa"))
	if resp.status != http.StatusOK {
		t.Fatalf("status %d", resp.status)
	}
	want := "By=spiffe://first;Hash=aa," + w.envoyElement(s, w.billing)
	if got := fake.last(t).GetAttributes().GetRequest().GetHttp().GetHeaders()["x-forwarded-client-cert"]; got != want {
		t.Errorf("check XFCC %q", got)
	}
	if got := up.last(t).header.Values("X-Forwarded-Client-Cert"); len(got) != 1 || got[0] != want {
		t.Errorf("upstream XFCC %q", got)
	}
}

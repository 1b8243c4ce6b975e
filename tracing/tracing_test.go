package tracing_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/certbind/certbind/testenv/logbuf"
	"github.com/certbind/certbind/testenv/stack"
	"github.com/certbind/certbind/testenv/testbed"
	"github.com/certbind/certbind/tracing"
)

// receiver is an OTLP/gRPC trace receiver on loopback: what the real exporter sends, kept.
type receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (r *receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// span is what the tests read of a span, from whichever receiver.
type span struct {
	name, id, parent string // ids in hex
	attrs            map[string]string
	failed           bool // error status
}

// backend reads back the spans of one trace.
type backend interface {
	trace(t *testing.T, traceID string) []span
}

func (r *receiver) trace(_ *testing.T, id string) []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []span
	for _, s := range r.spans {
		if hex.EncodeToString(s.GetTraceId()) == id {
			out = append(out, span{name: s.GetName(), id: hex.EncodeToString(s.GetSpanId()), parent: hex.EncodeToString(s.GetParentSpanId()),
				attrs: attrs(s), failed: s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR})
		}
	}
	return out
}

func startReceiver(t *testing.T) (*receiver, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, r)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return r, l.Addr().String()
}

func attrs(s *tracepb.Span) map[string]string {
	out := map[string]string{}
	for _, kv := range s.GetAttributes() {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			out[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_BoolValue:
			out[kv.GetKey()] = fmt.Sprint(v.BoolValue)
		case *commonpb.AnyValue_IntValue:
			out[kv.GetKey()] = fmt.Sprint(v.IntValue)
		}
	}
	return out
}

// tracedConfig: the test bed's clients and routes, the demo issuer's keys from a jwks_uri over
// the test PKI, and an introspection endpoint nothing listens on.
func tracedConfig(jwksURI, introspection string) []byte {
	base := testbed.ConfigWithoutTokens()
	return []byte(base + fmt.Sprintf(`
tokens:
  issuers:
    - issuer: %s
      jwks_uri: %s
      tls_ca: pki/ca.pem
      audiences: [%s]
      binding: required
  introspection:
    endpoint: %s
    client_id: certbind
    client_secret: secret
    tls_ca: pki/ca.pem
    timeout: 1s
`, testbed.Issuer, jwksURI, testbed.Audience, introspection))
}

// TestTracesThroughTheProxy: with OTEL_TRACES_EXPORTER=otlp (gRPC, to a receiver on loopback),
// a request through the Envoy stand-in with a traceparent gives a check span in the caller's
// trace, with the decision on it; the key set fetch and the introspection call are its
// children; and the decision log carries the same trace id. A deny from an unreachable
// introspection endpoint is found from the trace id alone.
func TestTracesThroughTheProxy(t *testing.T) {
	rcv, addr := startReceiver(t)
	tracesThroughTheProxy(t, rcv, "grpc", "http://"+addr)
}

// tracesThroughTheProxy runs the scenario with spans exported over protocol to endpoint and
// read back from b.
func tracesThroughTheProxy(t *testing.T, b backend, protocol, endpoint string) {
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	t.Setenv("OTEL_SERVICE_NAME", "certbind-test")
	tr, err := tracing.Setup(context.Background(), "test")
	if err != nil || !tr.Enabled {
		t.Fatalf("Setup: %v, enabled %v", err, tr != nil && tr.Enabled)
	}

	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	if err := testbed.GeneratePKI(pki, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	keys, err := os.ReadFile(filepath.Join(pki, testbed.FileASJWKS))
	if err != nil {
		t.Fatal(err)
	}
	jwks := serveTLS(t, pki, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(keys)
	}))
	closed := freePort(t)
	var logs logbuf.Buffer
	log := logrus.New()
	log.Out, log.Formatter = &logs, &logrus.JSONFormatter{}
	s, err := stack.Start(stack.Options{Dir: dir, ReusePKI: true, Logger: log, Tracing: tr,
		Config: tracedConfig("https://"+jwks+"/jwks", "https://"+closed+"/introspect")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	billing, err := s.Client(testbed.Billing)
	if err != nil {
		t.Fatal(err)
	}
	accessToken := token(t, billing, s.FrontURL)
	// One more request with the same certificate (refused: it has no token): the certificate
	// material was read a second time and admitted to the cache (package admission), so the
	// checks below read it from there.
	if resp, err := billing.Get(s.FrontURL + "/api/orders"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("request without a token: %d", resp.StatusCode)
	}

	for _, tc := range []struct {
		name, token, reason, decision, fetch string
		failed                               bool
	}{
		{"JWT: the key set is fetched", accessToken, "ok", "allow", "certbind.fetch GET " + jwks, false},
		{"opaque token, introspection unreachable", "opaque-token-value", "token_unverifiable", "deny", "certbind.fetch POST " + closed, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			traceID, parentID := newID(16), newID(8)
			req, _ := http.NewRequest("GET", s.FrontURL+"/api/orders", nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
			resp, err := billing.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()

			// From the trace id alone: the check span and its fetch.
			var check, fetch *span
			var all []span
			for deadline := time.Now().Add(15 * time.Second); (check == nil || fetch == nil) && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				all = b.trace(t, traceID)
				for i := range all {
					switch {
					case all[i].name == "certbind.check":
						check = &all[i]
					case strings.HasPrefix(all[i].name, "certbind.fetch "):
						fetch = &all[i]
					}
				}
			}
			if check == nil || fetch == nil {
				t.Fatalf("spans of trace %s: %+v", traceID, all)
			}
			if check.parent != parentID {
				t.Errorf("check span's parent %s, want the traceparent's %s", check.parent, parentID)
			}
			a := check.attrs
			wantClient := map[bool]string{true: "billing"}[tc.decision == "allow"] // the authenticated client
			if a["certbind.decision"] != tc.decision || a["certbind.reason"] != tc.reason || a["certbind.mode"] != "bound_token" ||
				a["certbind.client_id"] != wantClient || a["certbind.cache.certificate"] != "true" {
				t.Errorf("check span attributes %v", a)
			}
			if check.failed != tc.failed || fetch.failed != tc.failed {
				t.Errorf("error status: check %v, fetch %v, want %v", check.failed, fetch.failed, tc.failed)
			}
			if fetch.parent != check.id || fetch.name != tc.fetch {
				t.Errorf("fetch span %q with parent %s, want %q, a child of the check span %s", fetch.name, fetch.parent, tc.fetch, check.id)
			}
			for _, sp := range all {
				for k, v := range sp.attrs {
					if strings.Contains(v, tc.token) || strings.Contains(strings.ToLower(v), "bearer") {
						t.Errorf("span %s attribute %s carries the token: %q", sp.name, k, v)
					}
				}
			}
			if !logHasTrace(logs.String(), traceID, check.id, tc.reason) {
				t.Errorf("no decision log line with trace_id %s and reason %s:\n%s", traceID, tc.reason, logs.String())
			}
		})
	}
}

func logHasTrace(logs, traceID, spanID, reason string) bool {
	for _, line := range strings.Split(logs, "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["msg"] == "decision" &&
			e["trace_id"] == traceID && e["span_id"] == spanID && e["reason"] == reason {
			return true
		}
	}
	return false
}

// TestDisabled: without OTEL_TRACES_EXPORTER (or with none) tracing is off.
func TestDisabled(t *testing.T) {
	for _, v := range []string{"", "none"} {
		t.Setenv("OTEL_TRACES_EXPORTER", v)
		tr, err := tracing.Setup(context.Background(), "test")
		if err != nil || tr.Enabled {
			t.Errorf("OTEL_TRACES_EXPORTER=%q: enabled %v, %v", v, tr.Enabled, err)
		}
		if rt := tr.Transport(http.DefaultTransport); rt != http.DefaultTransport {
			t.Errorf("OTEL_TRACES_EXPORTER=%q: the transport was wrapped", v)
		}
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "zipkin-typo")
	if _, err := tracing.Setup(context.Background(), "test"); err == nil {
		t.Error("an unknown exporter was accepted")
	}
}

func token(t *testing.T, c *http.Client, front string) string {
	t.Helper()
	resp, err := c.Post(front+"/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials&client_id=billing&scope=read"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &tr) != nil || tr.AccessToken == "" {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	return tr.AccessToken
}

func serveTLS(t *testing.T, pki string, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.ServeTLS(l, filepath.Join(pki, testbed.FileEnvoyCert), filepath.Join(pki, testbed.FileEnvoyKey))
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newID(n int) string {
	b := make([]byte, n)
	f, _ := os.Open("/dev/urandom")
	defer f.Close()
	io.ReadFull(f, b)
	return hex.EncodeToString(b)
}

// TestPropagator: the parent comes from traceparent, else from B3 (single or multiple headers);
// both are written on outgoing requests.
func TestPropagator(t *testing.T) {
	p := tracing.Disabled().Propagator
	const id, w3c, b3id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "11f067aa0ba902b8"
	for _, tc := range []struct {
		name    string
		headers map[string]string
		parent  string
	}{
		{"traceparent", map[string]string{"traceparent": "00-" + id + "-" + w3c + "-01"}, w3c},
		{"traceparent wins over B3", map[string]string{"traceparent": "00-" + id + "-" + w3c + "-01", "b3": id + "-" + b3id + "-1"}, w3c},
		{"B3 single header", map[string]string{"b3": id + "-" + b3id + "-1"}, b3id},
		{"B3 multiple headers", map[string]string{"x-b3-traceid": id, "x-b3-spanid": b3id, "x-b3-sampled": "1"}, b3id},
		{"a malformed traceparent, then B3", map[string]string{"traceparent": "00-zz-" + w3c + "-01", "b3": id + "-" + b3id + "-1"}, b3id},
		{"none", map[string]string{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := trace.SpanContextFromContext(p.Extract(context.Background(), propagation.MapCarrier(tc.headers)))
			if got := map[bool]string{true: sc.SpanID().String()}[sc.IsValid()]; got != tc.parent {
				t.Fatalf("parent %q, want %q", got, tc.parent)
			}
			if tc.parent == "" {
				return
			}
			out := propagation.MapCarrier{}
			p.Inject(trace.ContextWithSpanContext(context.Background(), sc), out)
			if !strings.Contains(out["traceparent"], id) || out["x-b3-traceid"] != id {
				t.Errorf("injected %v", out)
			}
		})
	}
}

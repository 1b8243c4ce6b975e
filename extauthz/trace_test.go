package extauthz_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus/hooks/test"
	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/metadata"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
)

const (
	traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentID = "00f067aa0ba902b7"
	otherID  = "11f067aa0ba902b8"
)

// tracedServer is a Server with a span recorder, and the hook of its decision log.
func (f *fixture) tracedServer(t *testing.T) (*extauthz.Server, *tracetest.SpanRecorder, *test.Hook) {
	t.Helper()
	f.write(t, "certbind.yaml", []byte(baseConfig))
	cfg, err := policy.LoadConfig(filepath.Join(f.dir, "certbind.yaml"), policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	logger, hook := test.NewNullLogger()
	s := extauthz.New(extauthz.Config{
		Engine: policy.NewEngine(policy.EngineConfig{Config: cfg, Now: nowT0}), Logger: logger,
		Tracing: extauthz.Tracing{Tracer: tp.Tracer("test"),
			Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, b3.New())},
	})
	return s, rec, hook
}

// TestCheckSpanParent: the check span's parent comes from the request's headers (W3C or B3),
// else from the Check call's gRPC metadata; the decision log carries the span's ids.
func TestCheckSpanParent(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name     string
		headers  map[string]string
		metadata map[string]string
		parent   string // "" : a root span
	}{
		{"traceparent header", map[string]string{"traceparent": "00-" + traceID + "-" + parentID + "-01"}, nil, parentID},
		{"B3 single header", map[string]string{"b3": traceID + "-" + parentID + "-1"}, nil, parentID},
		{"B3 multiple headers", map[string]string{"x-b3-traceid": traceID, "x-b3-spanid": parentID, "x-b3-sampled": "1"}, nil, parentID},
		{"the request's header wins over the call's metadata", map[string]string{"traceparent": "00-" + traceID + "-" + parentID + "-01"},
			map[string]string{"traceparent": "00-" + traceID + "-" + otherID + "-01"}, parentID},
		{"gRPC metadata of the Check call", nil, map[string]string{"traceparent": "00-" + traceID + "-" + otherID + "-01"}, otherID},
		{"no parent", nil, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, rec, hook := f.tracedServer(t)
			ctx := context.Background()
			if tc.metadata != nil {
				ctx = metadata.NewIncomingContext(ctx, metadata.New(tc.metadata))
			}
			if _, err := s.Check(ctx, req{mode: "identity", path: "/internal/x", peer: f.svc, xfccHeader: envoyXFCC(f.svc), headers: tc.headers}.build()); err != nil {
				t.Fatal(err)
			}
			spans := rec.Ended()
			if len(spans) != 1 {
				t.Fatalf("%d spans", len(spans))
			}
			sp := spans[0]
			if tc.parent == "" {
				if sp.Parent().IsValid() {
					t.Errorf("parent %v, want a root span", sp.Parent())
				}
			} else if sp.Parent().SpanID().String() != tc.parent || sp.SpanContext().TraceID().String() != traceID {
				t.Errorf("span %v with parent %v, want parent %s in trace %s", sp.SpanContext(), sp.Parent(), tc.parent, traceID)
			}
			got := map[string]string{}
			for _, a := range sp.Attributes() {
				got[string(a.Key)] = a.Value.Emit()
			}
			if got["certbind.decision"] != "allow" || got["certbind.client_id"] != "svc" || got["certbind.transport"] != "grpc" || got["certbind.mode"] != "identity" {
				t.Errorf("attributes %v", got)
			}
			e := hook.LastEntry()
			if e == nil || e.Data["trace_id"] != sp.SpanContext().TraceID().String() || e.Data["span_id"] != sp.SpanContext().SpanID().String() {
				t.Errorf("decision log %v, want the span's ids", e)
			}
		})
	}
}

// TestHTTPEndpointSpan: the HTTP endpoint reads the parent from the request it is asked about.
func TestHTTPEndpointSpan(t *testing.T) {
	f := newFixture(t)
	s, rec, _ := f.tracedServer(t)
	srv := httptest.NewServer(extauthz.NewHTTPHandler(s))
	defer srv.Close()
	resp := send(t, "GET", srv.URL+"/internal/x", map[string]string{"traceparent": "00-" + traceID + "-" + parentID + "-01"}, "")
	if resp.StatusCode == 0 {
		t.Fatal("no answer")
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(rec.Ended()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Parent().SpanID().String() != parentID {
		t.Fatalf("spans %v", spans)
	}
}

// TestNoTracingNoTraceIDs: without a Tracer nothing is recorded and the log has no trace ids,
// even when the request carries a traceparent.
func TestNoTracingNoTraceIDs(t *testing.T) {
	f := newFixture(t)
	client, hook := f.start(t, baseConfig)
	if _, err := client.Check(context.Background(), req{mode: "identity", path: "/internal/x", peer: f.svc,
		headers: map[string]string{"traceparent": "00-" + traceID + "-" + parentID + "-01"}}.build()); err != nil {
		t.Fatal(err)
	}
	if e := hook.LastEntry(); e == nil || e.Data["trace_id"] != nil {
		t.Errorf("decision log %v", e)
	}
}

// TestTracingWithoutPropagator: a Tracer given without a Propagator still reads traceparent.
func TestTracingWithoutPropagator(t *testing.T) {
	f := newFixture(t)
	f.write(t, "certbind.yaml", []byte(baseConfig))
	cfg, err := policy.LoadConfig(filepath.Join(f.dir, "certbind.yaml"), policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	s := extauthz.New(extauthz.Config{Engine: policy.NewEngine(policy.EngineConfig{Config: cfg, Now: nowT0}),
		Tracing: extauthz.Tracing{Tracer: tp.Tracer("test")}})
	if _, err := s.Check(context.Background(), req{mode: "identity", path: "/internal/x", peer: f.svc, xfccHeader: envoyXFCC(f.svc),
		headers: map[string]string{"traceparent": "00-" + traceID + "-" + parentID + "-01"}}.build()); err != nil {
		t.Fatal(err)
	}
	if spans := rec.Ended(); len(spans) != 1 || spans[0].Parent().SpanID().String() != parentID {
		t.Fatalf("spans %v, want one with parent %s", spans, parentID)
	}
}

// TestSpanAttributesKeptApart: the attributes of one check's span stay its own after the next
// check, each span with its own decision, reason and client.
func TestSpanAttributesKeptApart(t *testing.T) {
	f := newFixture(t)
	s, rec, _ := f.tracedServer(t)
	for _, r := range []req{
		{mode: "identity", path: "/internal/x", peer: f.svc, xfccHeader: envoyXFCC(f.svc)},
		{mode: "identity", path: "/internal/x"},
	} {
		if _, err := s.Check(context.Background(), r.build()); err != nil {
			t.Fatal(err)
		}
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	want := []map[string]string{
		{"certbind.decision": "allow", "certbind.reason": string(policy.ReasonOK), "certbind.client_id": "svc"},
		{"certbind.decision": "deny", "certbind.reason": string(policy.ReasonNoCertificate), "certbind.client_id": ""},
	}
	for i, sp := range spans {
		got := map[string]string{}
		for _, a := range sp.Attributes() {
			got[string(a.Key)] = a.Value.Emit()
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("span %d: %s = %q, want %q (attributes %v)", i, k, got[k], v, got)
			}
		}
	}
}

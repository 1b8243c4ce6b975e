package tracing_test

import (
	"context"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
)

// BenchmarkSpanFloor is what one sampled check span costs the OpenTelemetry SDK and its
// OTLP/gRPC exporter alone, without certbind: a server span with a remote parent and the eight
// attributes of a warm bound_token check, ended through the batch processor, and exported to a
// receiver on loopback that reads no message (so its cost is not counted). cpu-ns/span is the
// process's CPU time per span, the export goroutines included; every span must be exported.
// Compare it with the server CPU per check of make bench's tracing-off run.
func BenchmarkSpanFloor(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(unreadCodec{}))
	collectortrace.RegisterTraceServiceServer(srv, unreadReceiver{})
	go srv.Serve(l)
	defer srv.Stop()

	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(l.Addr().String()), otlptracegrpc.WithInsecure())
	if err != nil {
		b.Fatal(err)
	}
	counted := &countingExporter{SpanExporter: exp}
	// Blocking: a span the queue would drop is cost this benchmark would not see.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(counted, sdktrace.WithBlocking()))
	defer tp.Shutdown(ctx)
	tr := tp.Tracer("bench")

	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	parent := trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true}))
	start := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	attrs := []attribute.KeyValue{
		attribute.String("certbind.transport", "grpc"), attribute.String("certbind.decision", "allow"),
		attribute.String("certbind.reason", "ok"), attribute.String("certbind.mode", "bound_token"),
		attribute.Bool("certbind.cache.certificate", true), attribute.String("certbind.client_id", "billing"),
		attribute.Bool("certbind.cache.chains", true), attribute.Bool("certbind.cache.tokens", true),
	}

	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		_, span := tr.Start(parent, "certbind.check", start...)
		span.SetAttributes(attrs...)
		span.End()
	}
	if err := tp.ForceFlush(ctx); err != nil {
		b.Fatal(err)
	}
	cpu := processCPU() - cpu0
	b.StopTimer()
	if n := counted.spans.Load(); n != int64(b.N) {
		b.Fatalf("%d spans exported of %d", n, b.N)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/span")
}

// countingExporter counts the spans its exporter sent without an error.
type countingExporter struct {
	sdktrace.SpanExporter
	spans atomic.Int64
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err == nil {
		e.spans.Add(int64(len(spans)))
	}
	return err
}

// unreadReceiver accepts every export.
type unreadReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
}

func (unreadReceiver) Export(context.Context, *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// unreadCodec is a receiver's codec that leaves requests unread and answers empty messages.
type unreadCodec struct{}

func (unreadCodec) Marshal(any) (mem.BufferSlice, error) { return nil, nil }
func (unreadCodec) Unmarshal(mem.BufferSlice, any) error { return nil }
func (unreadCodec) Name() string                         { return "proto" }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

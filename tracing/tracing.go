// Package tracing sets up certbind's OpenTelemetry tracing from the SDK's standard environment
// variables, so that it works with any collector:
//
//	OTEL_TRACES_EXPORTER=otlp                       on (otlp, console; none or unset: off)
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317
//	OTEL_EXPORTER_OTLP_PROTOCOL=grpc                 or http/protobuf (the default)
//	OTEL_TRACES_SAMPLER=parentbased_traceidratio     and OTEL_TRACES_SAMPLER_ARG=0.1
//	OTEL_SERVICE_NAME=certbind                       and OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*, ...
//
// Off (OTEL_TRACES_EXPORTER unset or none, or OTEL_SDK_DISABLED=true), Setup returns a Tracing
// whose Enabled is false, and certbind's code paths check that one flag and do nothing else.
//
// Parents are read from W3C traceparent/tracestate, else from B3 (single and multiple headers,
// which Envoy's Zipkin tracer sends); outgoing fetches carry traceparent and B3.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of certbind's own spans.
const Name = "github.com/certbind/certbind"

// Tracing is certbind's tracer provider, or nothing when tracing is off.
type Tracing struct {
	// Enabled: spans are made and exported. When false every other field is a no-op.
	Enabled    bool
	Tracer     trace.Tracer
	Propagator propagation.TextMapPropagator

	provider *sdktrace.TracerProvider
}

// Disabled is tracing off.
func Disabled() *Tracing {
	return &Tracing{Propagator: propagator()}
}

// Setup reads the environment and starts the exporter when tracing is on. version becomes
// service.version.
func Setup(ctx context.Context, version string) (*Tracing, error) {
	exp := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER"))
	if exp == "" || exp == "none" || strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return Disabled(), nil
	}
	exporter, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER=%s: %w", exp, err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("certbind"), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER (default parentbased_always_on) and the batch
	// processor's limits from OTEL_BSP_*: the SDK reads both.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	return &Tracing{Enabled: true, Tracer: tp.Tracer(Name), Propagator: propagator(), provider: tp}, nil
}

// propagator reads a parent from W3C trace context and, only when there is none, from B3; it
// writes both. Baggage is not read: certbind uses none, and every check would pay for it.
func propagator() propagation.TextMapPropagator {
	return firstOf{propagation.TraceContext{}, b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader))}
}

// firstOf extracts with the first propagator that finds a valid parent, and injects with all.
// (A composite propagator runs every extractor on every check.)
type firstOf []propagation.TextMapPropagator

func (p firstOf) Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	for _, q := range p {
		if c := q.Extract(ctx, carrier); trace.SpanContextFromContext(c).IsValid() {
			return c
		}
	}
	return ctx
}

func (p firstOf) Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	for _, q := range p {
		q.Inject(ctx, carrier)
	}
}

func (p firstOf) Fields() []string {
	var out []string
	for _, q := range p {
		out = append(out, q.Fields()...)
	}
	return out
}

// Shutdown flushes the spans not yet exported and stops the exporter, within ctx's deadline.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.provider == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// Transport instruments an outgoing transport: a client span per request, a child of the
// request context's span (a root span for background fetches), with the trace context
// propagated to the server. Off, it returns rt. Span names say the method and host, never a
// path or query (an OCSP GET carries its request there); no header is recorded.
func (t *Tracing) Transport(rt http.RoundTripper) http.RoundTripper {
	if t == nil || !t.Enabled {
		return rt
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	return otelhttp.NewTransport(rt,
		otelhttp.WithTracerProvider(t.provider),
		otelhttp.WithPropagators(t.Propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return "certbind.fetch " + r.Method + " " + r.URL.Host
		}),
	)
}

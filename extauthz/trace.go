package extauthz

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	grpcmd "google.golang.org/grpc/metadata"

	"github.com/certbind/certbind/policy"
)

// Tracing makes a span per check. The zero value (no Tracer) makes none.
type Tracing struct {
	Tracer     trace.Tracer
	Propagator propagation.TextMapPropagator // the parent's formats: traceparent, B3, ...
}

// Span attributes of a check. Never a token, a certificate, a key or Authorization text.
const (
	attrDecision   = attribute.Key("certbind.decision") // allow | deny
	attrReason     = attribute.Key("certbind.reason")
	attrMode       = attribute.Key("certbind.mode")
	attrClientID   = attribute.Key("certbind.client_id")
	attrCachedCert = attribute.Key("certbind.cache.certificate") // the parsed certificate came from cache
	attrTransport  = attribute.Key("certbind.transport")         // grpc | http
)

// startCheck starts the span of one check, a child of the request's trace: the parent is read
// from the request's own headers (what Envoy forwards, or nginx's subrequest), and failing that
// from fallback (the gRPC metadata of the Check call). Without a Tracer it returns ctx and nil.
func (s *Server) startCheck(ctx context.Context, transport string, headers propagation.TextMapCarrier, fallback func() propagation.TextMapCarrier) (context.Context, trace.Span) {
	t := s.tracing
	if t.Tracer == nil {
		return ctx, nil
	}
	parent := t.Propagator.Extract(ctx, headers)
	if !trace.SpanContextFromContext(parent).IsValid() && fallback != nil {
		parent = t.Propagator.Extract(ctx, fallback())
	}
	return t.Tracer.Start(parent, "certbind.check", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attrTransport.String(transport)))
}

// endCheck records the decision on the span and ends it.
func endCheck(span trace.Span, d policy.Decision, certCached bool) {
	if span == nil {
		return
	}
	decision := "deny"
	if d.Allow {
		decision = "allow"
	}
	span.SetAttributes(attrDecision.String(decision), attrReason.String(string(d.Reason)),
		attrMode.String(string(d.Mode)), attrCachedCert.Bool(certCached))
	if d.ClientID != "" {
		span.SetAttributes(attrClientID.String(d.ClientID))
	}
	// A deny is certbind working; only a decision it could not make (keys or introspection
	// unreachable) is an error of the span.
	if !d.Allow && d.Reason.Class() == policy.ClassUnavailable {
		span.SetStatus(otelcodes.Error, string(d.Reason))
	}
	span.End()
}

// grpcMetadata is the incoming gRPC metadata of a Check call as a carrier.
func grpcMetadata(ctx context.Context) func() propagation.TextMapCarrier {
	return func() propagation.TextMapCarrier {
		md, _ := grpcmd.FromIncomingContext(ctx)
		return metadataCarrier(md)
	}
}

// metadataCarrier reads gRPC metadata (keys are lower case) for a propagator.
type metadataCarrier grpcmd.MD

func (m metadataCarrier) Get(key string) string {
	if v := grpcmd.MD(m).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (m metadataCarrier) Set(key, value string) { grpcmd.MD(m).Set(key, value) }

func (m metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

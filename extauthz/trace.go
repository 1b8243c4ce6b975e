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
	Propagator propagation.TextMapPropagator // the parent's formats: traceparent, B3, ...; nil: traceparent
}

// Span attributes of a check. Never a token, a certificate, a key or Authorization text.
const (
	attrDecision    = attribute.Key("certbind.decision") // allow | deny
	attrReason      = attribute.Key("certbind.reason")
	attrMode        = attribute.Key("certbind.mode")
	attrClientID    = attribute.Key("certbind.client_id")
	attrCachedCert  = attribute.Key("certbind.cache.certificate") // the parsed certificate came from cache
	attrCachedChain = attribute.Key("certbind.cache.chains")      // the verified chain came from cache
	attrCachedToken = attribute.Key("certbind.cache.tokens")      // the verified token came from cache
	attrTransport   = attribute.Key("certbind.transport")         // grpc | http
)

// The values of a check span known before the check: made once, not per check.
var (
	allowDecision = attrDecision.String("allow")
	denyDecision  = attrDecision.String("deny")
	// checkStart is the start option of every check span (a variadic slice built per call
	// would be allocated per check).
	checkStart = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
)

// checkAttrs is the most attributes a check span gets.
const checkAttrs = 8

// check is one traced check: its span and what its decision reports of the caches.
type check struct {
	span      trace.Span
	transport string
	caches    policy.CacheReport
}

// startCheck starts the span of one check, a child of the request's trace: the parent is read
// from the request's own headers (what Envoy forwards, or nginx's subrequest), and failing that,
// with orMetadata, from the gRPC metadata of the Check call. Without a Tracer it returns ctx and
// nil.
func (s *Server) startCheck(ctx context.Context, transport string, headers propagation.TextMapCarrier, orMetadata bool) (context.Context, *check) {
	t := s.tracing
	if t.Tracer == nil {
		return ctx, nil
	}
	parent := t.Propagator.Extract(ctx, headers)
	if !trace.SpanContextFromContext(parent).IsValid() && orMetadata {
		md, _ := grpcmd.FromIncomingContext(ctx)
		parent = t.Propagator.Extract(ctx, metadataCarrier(md))
	}
	c := &check{transport: transport}
	ctx, c.span = t.Tracer.Start(parent, "certbind.check", checkStart...)
	if c.span.IsRecording() {
		ctx = policy.WithCacheReport(ctx, &c.caches)
	}
	return ctx, c
}

// spanOf is the check's span, nil when not tracing.
func (c *check) spanOf() trace.Span {
	if c == nil {
		return nil
	}
	return c.span
}

// endCheck records the decision on the span, in one update, and ends it.
func endCheck(c *check, d policy.Decision, certCached bool) {
	if c == nil {
		return
	}
	span := c.span
	if !span.IsRecording() {
		span.End()
		return
	}
	decision := denyDecision
	if d.Allow {
		decision = allowDecision
	}
	// One allocation of the most a span gets. (Recycling it would rely on every Tracer copying
	// what SetAttributes is given, which the API does not promise.)
	attrs := make([]attribute.KeyValue, 0, checkAttrs)
	attrs = append(attrs, attrTransport.String(c.transport), decision, attrReason.String(string(d.Reason)),
		attrMode.String(string(d.Mode)), attrCachedCert.Bool(certCached))
	if d.ClientID != "" {
		attrs = append(attrs, attrClientID.String(d.ClientID))
	}
	if c.caches.ChainsUsed {
		attrs = append(attrs, attrCachedChain.Bool(c.caches.ChainsHit))
	}
	if c.caches.TokensUsed {
		attrs = append(attrs, attrCachedToken.Bool(c.caches.TokensHit))
	}
	span.SetAttributes(attrs...)
	// A deny is certbind working; only a decision it could not make (keys or introspection
	// unreachable) is an error of the span.
	if !d.Allow && d.Reason.Class() == policy.ClassUnavailable {
		span.SetStatus(otelcodes.Error, string(d.Reason))
	}
	span.End()
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

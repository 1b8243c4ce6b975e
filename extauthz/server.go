package extauthz

import (
	"context"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/certbind/certbind/policy"
)

// ModeKey is the context extension through which an Envoy route selects certbind's mode
// (ExtAuthzPerRoute.check_settings.context_extensions).
const ModeKey = "certbind_mode"

// Config is what a Server needs.
type Config struct {
	Engine   *policy.Engine
	Logger   logrus.FieldLogger // nil: no decision log
	Now      func() time.Time   // for durations; default time.Now
	Observer Observer           // optional: metrics
	Tracing  Tracing            // optional: a span per check
}

// Observer is told about every decision and cache event (package metrics implements it).
type Observer interface {
	ObserveDecision(d policy.Decision, took time.Duration, now time.Time)
	ObserveCache(cache, event string)
}

// Server implements envoy.service.auth.v3.Authorization.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	engine  *policy.Engine
	log     logrus.FieldLogger
	now     func() time.Time
	obs     Observer
	tracing Tracing
	// configs holds, per configuration, the adapter's compiled settings and certificate cache.
	configs adapterConfigs
}

// New makes a Server.
func New(c Config) *Server {
	s := &Server{engine: c.Engine, log: c.Logger, now: c.Now, obs: c.Observer, tracing: c.Tracing}
	if s.tracing.Tracer != nil && s.tracing.Propagator == nil {
		s.tracing.Propagator = propagation.TraceContext{}
	}
	if c.Observer != nil {
		s.configs.onEvent = c.Observer.ObserveCache
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Check authorizes one request. Decisions, allow or deny, are CheckResponses with a nil error;
// an error is returned only when certbind itself cannot decide (Envoy then applies its
// failure policy, which must be deny: failure_mode_allow false).
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := s.now()
	cfg := s.engine.Config()
	if cfg == nil {
		return nil, status.Error(codes.Unavailable, "certbind: no configuration loaded")
	}
	ac := s.configs.forConfig(cfg)
	in, certCached := s.readInput(req, ac)
	ctx, c := s.startCheck(ctx, "grpc", propagation.MapCarrier(in.Request.Headers), true)
	d := s.engine.DecideWith(ctx, cfg, in)
	s.record(c.spanOf(), d, in.Request.Headers["x-request-id"], start)
	endCheck(c, d, certCached)
	return Render(d, ac.set.response), nil
}

// readInput turns a CheckRequest into the policy's input, and says whether its certificate
// came from the cache.
func (s *Server) readInput(req *authv3.CheckRequest, ac *adapterConfig) (policy.Input, bool) {
	attrs := req.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	in := policy.Input{
		ModeHint: attrs.GetContextExtensions()[ModeKey],
		Request: policy.Request{
			Method:  h.GetMethod(),
			Scheme:  h.GetScheme(),
			Host:    h.GetHost(),
			Path:    h.GetPath(),
			Headers: headers(h),
		},
	}
	in.Request.Body = h.GetRawBody()
	if len(in.Request.Body) == 0 && h.GetBody() != "" {
		in.Request.Body = []byte(h.GetBody())
	}
	in.Request.BodyTruncated = in.Request.Headers["x-envoy-auth-partial-body"] == "true"
	xv, xok := in.Request.Headers["x-forwarded-client-cert"]
	src := certSources{peer: attrs.GetSource().GetCertificate(), xfcc: xv, xfccPresent: xok,
		destination: attrs.GetDestination().GetPrincipal()}
	cached := s.configs.fill(&in, ac, func() (*policy.Presented, error) { return certificate(src, ac.set) },
		"grpc", src.peer, presence(xok), src.xfcc, src.destination)
	return in, cached
}

// headers returns the request headers with lower-case names. Envoy fills either the headers
// map or, with encode_raw_headers, header_map (repeated entries, joined here with "," as Envoy
// joins them in the map).
func headers(h *authv3.AttributeContext_HttpRequest) map[string]string {
	if hm := h.GetHeaders(); len(h.GetHeaderMap().GetHeaders()) == 0 && allLower(hm) {
		return hm // Envoy's keys are already lower-case: no copy on the hot path
	}
	out := make(map[string]string, len(h.GetHeaders()))
	for k, v := range h.GetHeaders() {
		out[strings.ToLower(k)] = v
	}
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		k := strings.ToLower(hv.GetKey())
		v := hv.GetValue()
		if raw := hv.GetRawValue(); len(raw) > 0 {
			v = string(raw)
		}
		if prev, ok := out[k]; ok {
			v = prev + "," + v
		}
		out[k] = v
	}
	return out
}

// record logs a decision, with the check span's trace when there is one, and tells the
// observer.
func (s *Server) record(span trace.Span, d policy.Decision, requestID string, start time.Time) {
	now := s.now()
	took := now.Sub(start)
	if s.obs != nil {
		s.obs.ObserveDecision(d, took, now)
	}
	s.logDecision(span, d, requestID, took)
}

func (s *Server) logDecision(span trace.Span, d policy.Decision, requestID string, took time.Duration) {
	if s.log == nil {
		return
	}
	logger, isLogger := s.log.(*logrus.Logger)
	if isLogger && !logger.IsLevelEnabled(logrus.InfoLevel) {
		return
	}
	var sc trace.SpanContext
	if span != nil {
		sc = span.SpanContext()
	}
	// A map that grows past eight entries is rebuilt: size a traced check's line for all ten.
	n := 8
	if sc.IsValid() {
		n = 10
	}
	fields := make(logrus.Fields, n)
	fields["decision"] = "deny"
	fields["reason"] = string(d.Reason)
	fields["mode"] = string(d.Mode)
	fields["duration_us"] = took.Microseconds()
	if d.Allow {
		fields["decision"] = "allow"
	}
	if d.ClientID != "" {
		fields["client_id"] = d.ClientID
	}
	if d.Certificate != nil {
		fields["thumbprint"] = d.Certificate.X5tS256
	}
	if requestID != "" {
		fields["request_id"] = requestID
	}
	if sc.IsValid() {
		fields["trace_id"], fields["span_id"] = sc.TraceID().String(), sc.SpanID().String()
	}
	if d.Cause != nil {
		fields["cause"] = d.Cause.Error()
	}
	if isLogger {
		// One line per check: hand the fields over instead of letting WithFields copy them.
		e := logrus.NewEntry(logger)
		e.Data = fields
		e.Info("decision")
		return
	}
	s.log.WithFields(fields).Info("decision")
}

func allLower(m map[string]string) bool {
	for k := range m {
		for i := 0; i < len(k); i++ {
			if 'A' <= k[i] && k[i] <= 'Z' {
				return false
			}
		}
	}
	return true
}

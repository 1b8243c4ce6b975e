package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/certbind/certbind/testenv/bench"
)

// tracingTarget: tracing may cost at most this much more server CPU per check than none.
const tracingTarget = 1.10

// tracingRounds is how many slices of --duration (and --warmup) each of the three servers is
// measured in, in turn.
const tracingRounds = 5

// otlpSink is an OTLP/gRPC trace receiver that counts the spans it gets and keeps none: the
// exporter's real protocol, at no cost the measurement would see.
type otlpSink struct {
	collectortrace.UnimplementedTraceServiceServer
	spans atomic.Int64
}

func (s *otlpSink) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			s.spans.Add(int64(len(ss.GetSpans())))
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// runTracing measures warm bound_token over gRPC against certbind with tracing off (cb), with
// every check sampled and exported (OTEL_TRACES_SAMPLER=always_on), and with the default
// parent-based sampler behind an unsampled parent, and checks both against tracingTarget.
func runTracing(ctx context.Context, o options, f *bench.Fixture, cb *server, dir string, stdout, stderr io.Writer) ([]bench.Check, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sink := &otlpSink{}
	gs := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(gs, sink)
	go gs.Serve(l)
	defer gs.Stop()
	otel := []string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_EXPORTER_OTLP_ENDPOINT=http://" + l.Addr().String()}

	args := append([]string{"serve", "--config", f.ConfigPath()}, o.certbindArgs...)
	all, err := startServer(ctx, "certbind+traces", o.certbind, args, filepath.Join(dir, "certbind-traced.log"), append(otel, "OTEL_TRACES_SAMPLER=always_on")...)
	if err != nil {
		return nil, err
	}
	defer stopServer(all, stderr)
	parent, err := startServer(ctx, "certbind+parent", o.certbind, args, filepath.Join(dir, "certbind-parent.log"), append(otel, "OTEL_TRACES_SAMPLER=parentbased_always_on")...)
	if err != nil {
		return nil, err
	}
	defer stopServer(parent, stderr)

	warm, err := f.WarmCredential()
	if err != nil {
		return nil, err
	}
	traced := func(flags string) []bench.Request {
		r := bench.NewRequest(warm, bench.ModeBoundToken, 0)
		r.Headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-" + flags
		return []bench.Request{r}
	}
	b := &bencher{o: o, f: f, stderr: stderr}
	s := bench.Scenario{Name: "warm-traced", Kind: bench.Warm, Mode: bench.ModeBoundToken}
	runs := []struct {
		srv   *server
		flags string
		r     bench.Result
	}{{srv: cb, flags: "01"}, {srv: all, flags: "01"}, {srv: parent, flags: "00"}}
	// The three are measured in turn, round after round, and each one's rounds summed: other work
	// on the machine that comes and goes then weighs on all three alike, rather than on
	// whichever ran while it lasted. Each round has a warmup of its own (new connections).
	load := bench.Load{Workers: o.concurrency, Warmup: o.warmup / tracingRounds, Duration: o.duration / tracingRounds}
	for round := range tracingRounds {
		for i := range runs {
			run := &runs[(round+i)%len(runs)]
			r, err := b.run(ctx, run.srv, s, "grpc", traced(run.flags), 0, load)
			if err != nil {
				return nil, fmt.Errorf("grpc %s against %s: %w", s.Name, run.srv.name, err)
			}
			run.r.Add(r)
		}
	}
	for i := range runs {
		b.record(runs[i].srv, s, "grpc", &runs[i].r)
	}
	off, sampled, unsampled := &runs[0].r, &runs[1].r, &runs[2].r
	// Every sampled check's span must reach the sink: a span the batch processor dropped (its
	// queue full) would be cost the measurement does not see. Stopping certbind flushes its spans;
	// only the checks still in flight when a round's load stopped (at most one per worker) may
	// have been cancelled before certbind saw them.
	if err := all.stop(); err != nil {
		return nil, err
	}
	exported := sink.spans.Load()
	if lo, hi := int64(sampled.Issued)-int64(tracingRounds*o.concurrency), int64(sampled.Issued); exported < lo || exported > hi {
		return nil, fmt.Errorf("tracing: the OTLP sink got %d spans from %d checks sent at 100%% sampling, want every check's span (log: %s)",
			exported, sampled.Issued, tail(all.logPath))
	}
	if err := bench.WriteResults(stdout, b.measurements); err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "tracing: %d spans exported by the 100%% sampling run, %d checks sent (warmup included)\n", exported, sampled.Issued)
	var checks []bench.Check
	for _, m := range []struct {
		what string
		r    *bench.Result
	}{{"100% sampling", sampled}, {"unsampled parent", unsampled}} {
		ratio := float64(m.r.ServerCPUPerRequest()) / float64(off.ServerCPUPerRequest())
		c := bench.Check{Pass: ratio <= tracingTarget, What: fmt.Sprintf("tracing (%s) server CPU/check %.2fx of tracing off (target %.2fx)", m.what, ratio, tracingTarget)}
		fmt.Fprintln(stdout, c.What)
		checks = append(checks, c)
	}
	fmt.Fprintln(stdout)
	return checks, nil
}

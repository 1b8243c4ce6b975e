// Command certbind-bench measures certbind against a no-op ext_authz server in the same run and
// reports certbind's cost as ratios to it (see testenv/bench for the method).
//
//	certbind-bench [--certbind bin/certbind] [--noop bin/noop-authz] [--duration 10s] [--strict] [--memory] [--registry 100000]
//
// It builds nothing: build both binaries first (go build -o bin/ ./cmd/...). It generates a PKI
// and a certbind configuration into a temporary directory, starts both servers as child
// processes on loopback ports, drives each scenario against each server in turn, and prints a
// table of throughput, latency and server CPU per check, then the ratios against the targets
// and a summary line. It exits 0 whatever the ratios unless --strict is given; then a missed
// target exits 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/certbind/certbind/testenv/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errMissed):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "certbind-bench:", err)
		os.Exit(2)
	}
}

// errMissed is returned with --strict when a target was missed.
var errMissed = errors.New("a target was missed")

type options struct {
	certbind, noop string
	certbindArgs   stringList
	duration       time.Duration
	warmup         time.Duration
	concurrency    int
	conns          int
	scenarios      []bench.Scenario
	transports     []string
	coldPool       int
	strict         bool
	keep           bool
	memory         bool
	memoryCerts    int
	memoryMode     string
	memoryMaxMB    float64
	tracing        bool
	dpop           bool
	registry       int
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("certbind-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.certbind, "certbind", "bin/certbind", "certbind binary")
	fs.StringVar(&o.noop, "noop", "bin/noop-authz", "noop-authz binary (the baseline)")
	fs.Var(&o.certbindArgs, "certbind-arg", "extra argument for certbind serve, e.g. --certbind-arg=--log-level=warn (repeatable)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per scenario and server")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each measurement")
	fs.IntVar(&o.concurrency, "concurrency", 50, "concurrent requests (closed loop)")
	fs.IntVar(&o.conns, "conns", 2, "gRPC connections (Envoy opens one per worker thread); HTTP uses one per concurrent request")
	scen := fs.String("scenarios", "warm,warm-client-auth,cold,cold-client-auth", "comma-separated scenarios to run, \"\" for none: "+scenarioNames())
	trans := fs.String("transports", "grpc,http", "comma-separated: grpc (ext_authz v3), http (the HTTP authorization endpoint)")
	fs.IntVar(&o.coldPool, "cold-pool", 20000, "credentials pregenerated for the baseline's cold runs and certbind's cold warmups (certbind's measured cold runs get fresh ones)")
	fs.BoolVar(&o.strict, "strict", false, "exit 1 when a target is missed")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (configuration, PKI, server logs)")
	fs.BoolVar(&o.memory, "memory", false, "also drive --memory-certs distinct certificates through certbind and report its RSS")
	fs.IntVar(&o.memoryCerts, "memory-certs", 1_000_000, "distinct certificates of the memory scenario")
	fs.StringVar(&o.memoryMode, "memory-mode", "mixed", "memory scenario requests: client_auth, bound_token (each with a new token) or mixed (alternating)")
	fs.Float64Var(&o.memoryMaxMB, "memory-max-mb", 150, "memory target: certbind's peak RSS during the memory scenario stays below this many MB")
	fs.BoolVar(&o.dpop, "dpop", true, "also measure a warm DPoP-bound token with a new proof per request over gRPC, against the no-op")
	fs.BoolVar(&o.tracing, "tracing", true, "also measure warm bound_token with OpenTelemetry tracing on (100% sampling, and an unsampled parent) against tracing off")
	fs.IntVar(&o.registry, "registry", 100_000, "clients of the registry scenario (certbind validate time and peak RSS, serve peak RSS, identity CPU/check against ten clients); 0 to skip")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, name := range splitList(*scen) {
		s, ok := bench.ScenarioNamed(name)
		if !ok {
			return o, fmt.Errorf("--scenarios: unknown %q (want some of %s)", name, scenarioNames())
		}
		o.scenarios = append(o.scenarios, s)
	}
	for _, t := range splitList(*trans) {
		if t != "grpc" && t != "http" {
			return o, fmt.Errorf("--transports: unknown %q (want grpc, http)", t)
		}
		o.transports = append(o.transports, t)
	}
	switch {
	case o.duration <= 0:
		return o, errors.New("--duration must be positive")
	case o.concurrency <= 0 || o.conns <= 0:
		return o, errors.New("--concurrency and --conns must be positive")
	case o.coldPool <= 0 || o.memoryCerts <= 0:
		return o, errors.New("--cold-pool and --memory-certs must be positive")
	case o.memoryMode != "mixed" && o.memoryMode != string(bench.ModeClientAuth) && o.memoryMode != string(bench.ModeBoundToken):
		return o, fmt.Errorf("--memory-mode %q: want client_auth, bound_token or mixed", o.memoryMode)
	case o.registry < 0:
		return o, errors.New("--registry must not be negative")
	case len(o.scenarios) == 0 && !o.memory && !o.tracing && !o.dpop && o.registry == 0:
		return o, errors.New("nothing to run: no --scenarios, no --memory, no --tracing, no --dpop, no --registry")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func scenarioNames() string {
	var n []string
	for _, s := range bench.Scenarios {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "certbind-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(stderr, "certbind-bench: working directory", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	f, err := bench.NewFixture(dir, time.Now())
	if err != nil {
		return err
	}
	var rl registryLoad
	if o.registry > 0 {
		if rl, err = measureRegistryLoad(ctx, o, f); err != nil {
			return err
		}
	}

	noop, err := startServer(ctx, "no-op", o.noop, nil, filepath.Join(dir, "noop.log"))
	if err != nil {
		return err
	}
	defer stopServer(noop, stderr)
	cb, err := startServer(ctx, "certbind", o.certbind,
		append([]string{"serve", "--config", f.ConfigPath()}, o.certbindArgs...), filepath.Join(dir, "certbind.log"))
	if err != nil {
		return err
	}
	defer stopServer(cb, stderr)

	fmt.Fprintf(stdout, "certbind-bench: %d CPUs (GOMAXPROCS %d), %s; concurrency %d, %d gRPC connections, warmup %s, %s per run\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), o.concurrency, o.conns, o.warmup, o.duration)
	fmt.Fprintf(stdout, "certbind-bench: certbind %s %s; baseline %s\n\n", o.certbind, strings.Join(o.certbindArgs, " "), o.noop)

	var verdicts []bench.Verdict
	if len(o.scenarios) > 0 {
		b := &bencher{o: o, f: f, stderr: stderr}
		if err := b.runAll(ctx, noop, cb); err != nil {
			return err
		}
		if err := bench.WriteResults(stdout, b.measurements); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
		verdicts = bench.Judge(b.comparisons, bench.Targets)
		if err := bench.WriteVerdicts(stdout, verdicts); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
	}
	var more []bench.Check
	if o.dpop {
		if err := runDPoP(ctx, o, f, noop, cb, stdout, stderr); err != nil {
			return err
		}
	}
	if o.tracing {
		checks, err := runTracing(ctx, o, f, cb, dir, stdout, stderr)
		if err != nil {
			return err
		}
		more = append(more, checks...)
	}
	if o.registry > 0 {
		checks, err := runRegistry(ctx, o, f, rl, dir, stdout, stderr)
		if err != nil {
			return err
		}
		more = append(more, checks...)
	}
	if o.memory {
		m, err := runMemory(ctx, o, f, cb, stdout, stderr)
		if err != nil {
			return err
		}
		c := bench.Check{Pass: m.peak < int64(o.memoryMaxMB*(1<<20))}
		c.What = fmt.Sprintf("memory peak RSS %s >= %.0f MB", mb(m.peak), o.memoryMaxMB)
		if c.Pass {
			c.What = fmt.Sprintf("memory peak RSS %s < %.0f MB", mb(m.peak), o.memoryMaxMB)
		}
		more = append(more, c)
	}
	line, ok := bench.Summary(verdicts, more...)
	fmt.Fprintln(stdout, line)
	if !ok && o.strict {
		return errMissed
	}
	return nil
}

// bencher runs the scenarios against both servers.
//
// A cold run must never show certbind a credential twice, or its caches would answer. The
// baseline has no cache and cycles through a fixed pool. Against certbind, the warmup of a cold
// run draws from that pool and gives certbind's cold rate; then exactly as many fresh
// credentials as that rate sends in --duration are minted, and the measured run sends each of
// them once (a request count, not a duration: if certbind turns out faster than its warmup,
// the window is shorter, never warm).
type bencher struct {
	o            options
	f            *bench.Fixture
	stderr       io.Writer
	pool         []*bench.Credential // for the baseline and certbind's warmups
	poolCursor   uint64              // next pool credential for a certbind warmup
	next         uint64              // number of the next credential to mint
	measurements []bench.Measurement
	comparisons  []bench.Comparison
}

func (b *bencher) runAll(ctx context.Context, noop, cb *server) error {
	warm, err := b.f.WarmCredential()
	if err != nil {
		return err
	}
	for _, s := range b.o.scenarios {
		if s.Kind == bench.Cold && b.pool == nil {
			start := time.Now()
			if b.pool, err = b.f.ColdPool(1, b.o.coldPool); err != nil {
				return err
			}
			b.next = uint64(1 + b.o.coldPool)
			fmt.Fprintf(b.stderr, "certbind-bench: minted a pool of %d certificates and tokens in %s\n", len(b.pool), time.Since(start).Round(time.Millisecond))
		}
	}
	for _, s := range b.o.scenarios {
		reqs := s.Requests(warm, b.pool)
		for _, tr := range b.o.transports {
			load := bench.Load{Workers: b.o.concurrency, Warmup: b.o.warmup, Duration: b.o.duration}
			r0, err := b.measure(ctx, noop, s, tr, reqs, load)
			if err != nil {
				return err
			}
			var r1 *bench.Result
			if s.Kind == bench.Cold {
				r1, err = b.measureCold(ctx, cb, s, tr, reqs)
			} else {
				r1, err = b.measure(ctx, cb, s, tr, reqs, load)
			}
			if err != nil {
				return err
			}
			b.comparisons = append(b.comparisons, bench.Comparison{Transport: tr, Scenario: s, Base: r0, Subject: r1})
		}
	}
	return nil
}

// measureCold measures certbind on fresh credentials, after a warmup on the pool.
func (b *bencher) measureCold(ctx context.Context, cb *server, s bench.Scenario, tr string, pool []bench.Request) (*bench.Result, error) {
	wu, err := b.run(ctx, cb, s, tr, pool, b.poolCursor, bench.Load{Workers: b.o.concurrency, Duration: max(b.o.warmup, time.Second)})
	if err != nil {
		return nil, fmt.Errorf("%s %s warmup against %s: %w", tr, s.Name, cb.name, err)
	}
	b.poolCursor += wu.Issued
	n := max(int(wu.RPS()*b.o.duration.Seconds()), 10*b.o.concurrency)
	start := time.Now()
	fresh, err := b.f.ColdPool(b.next, n)
	if err != nil {
		return nil, err
	}
	b.next += uint64(n)
	fmt.Fprintf(b.stderr, "certbind-bench: %s %s: warmup %.0f rps; minted %d fresh credentials in %s\n",
		tr, s.Name, wu.RPS(), n, time.Since(start).Round(time.Millisecond))
	return b.measure(ctx, cb, s, tr, s.Requests(nil, fresh), bench.Load{Workers: b.o.concurrency, Requests: int64(n)})
}

// measure runs one scenario over one transport against one server, records and reports it.
func (b *bencher) measure(ctx context.Context, srv *server, s bench.Scenario, tr string, reqs []bench.Request, load bench.Load) (*bench.Result, error) {
	r, err := b.run(ctx, srv, s, tr, reqs, 0, load)
	if err != nil {
		return nil, fmt.Errorf("%s %s against %s: %w", tr, s.Name, srv.name, err)
	}
	b.record(srv, s, tr, r)
	return r, nil
}

// record keeps a measurement for the results table and reports it.
func (b *bencher) record(srv *server, s bench.Scenario, tr string, r *bench.Result) {
	b.measurements = append(b.measurements, bench.Measurement{Transport: tr, Scenario: s, Server: srv.name, Result: r})
	fmt.Fprintf(b.stderr, "certbind-bench: %-4s %-16s %-8s %6d requests in %5.2fs: %6.0f rps, p99 %s, server CPU %s/check, other load %.0f%%, errors %d, denied %d\n",
		tr, s.Name, srv.name, r.Requests, r.Elapsed.Seconds(), r.RPS(), r.Latency.Quantile(0.99).Round(time.Microsecond),
		r.ServerCPUPerRequest().Round(100*time.Nanosecond), 100*r.OtherLoad(), r.Errors, r.Denied)
}

// run drives reqs against srv: the same request again and again for a warm scenario, each in
// turn from offset for a cold one.
func (b *bencher) run(ctx context.Context, srv *server, s bench.Scenario, tr string, reqs []bench.Request, offset uint64, load bench.Load) (*bench.Result, error) {
	index := func(uint64) int { return 0 }
	if s.Kind == bench.Cold {
		index = func(seq uint64) int { return int((offset + seq) % uint64(len(reqs))) }
	}
	var send bench.Sender
	switch tr {
	case "grpc":
		frames, err := bench.Frames(reqs, time.Now())
		if err != nil {
			return nil, err
		}
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := bench.DialGRPC(dctx, srv.grpcAddr, b.o.conns)
		cancel()
		if err != nil {
			return nil, err
		}
		defer c.Close()
		send = c.Sender(func(seq uint64) []byte { return frames[index(seq)] })
	case "http":
		c := bench.NewHTTPClient(srv.httpAddr, b.o.concurrency)
		defer c.Close()
		prepared := make([]*bench.HTTPRequest, len(reqs))
		for i, r := range reqs {
			prepared[i] = c.Prepare(r)
		}
		send = c.Sender(func(seq uint64) *bench.HTTPRequest { return prepared[index(seq)] })
	}
	load.PID = srv.pid()
	r, err := bench.Run(ctx, load, send)
	if err != nil {
		return nil, err
	}
	return r, srv.alive()
}

func stopServer(s *server, stderr io.Writer) {
	if err := s.stop(); err != nil {
		fmt.Fprintln(stderr, "certbind-bench:", err)
	}
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

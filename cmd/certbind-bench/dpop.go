package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/certbind/certbind/testenv/bench"
)

// dpopWarmup is how many proofs certbind's unmeasured DPoP run gets, to learn its rate.
const dpopWarmup = 3000

// runDPoP measures a warm DPoP request over gRPC: the same DPoP-bound token (verified and
// cached after its first use) with a new proof every request, as a client sends, so one proof
// signature verification and one replay-store insertion per Check are the inherent cost. The
// no-op gets the same requests. It reports the ratio; the issue sets no target.
func runDPoP(ctx context.Context, o options, f *bench.Fixture, noop, cb *server, stdout, stderr io.Writer) error {
	warm, err := f.WarmCredential()
	if err != nil {
		return err
	}
	d, err := f.NewDPoP()
	if err != nil {
		return err
	}
	b := &bencher{o: o, f: f, stderr: stderr}
	// Each proof goes once, in turn: the scenario indexes its requests like a cold one.
	s := bench.Scenario{Name: "warm-dpop", Kind: bench.Cold, Mode: bench.ModeBoundToken}
	seq := uint64(1)
	proofs := func(n int) ([]bench.Request, error) {
		start := time.Now()
		reqs, err := d.Requests(warm, seq, n, start)
		seq += uint64(n)
		fmt.Fprintf(stderr, "certbind-bench: minted %d DPoP proofs in %s\n", n, time.Since(start).Round(time.Millisecond))
		return reqs, err
	}
	reqs, err := proofs(dpopWarmup)
	if err != nil {
		return err
	}
	wu, err := b.run(ctx, cb, s, "grpc", reqs, 0, bench.Load{Workers: o.concurrency, Requests: dpopWarmup})
	if err != nil {
		return fmt.Errorf("dpop warmup: %w", err)
	}
	if wu.Denied > 0 || wu.Errors > 0 {
		return fmt.Errorf("dpop warmup: %d denied, %d failed: the scenario must be all allows (log: %s)", wu.Denied, wu.Errors, tail(cb.logPath))
	}
	// As many fresh proofs as certbind checks in the measured time, made just before it (each
	// proof is good for tokens.dpop.window, 60 s by default).
	n := max(int(wu.RPS()*o.duration.Seconds()), 10*o.concurrency)
	if reqs, err = proofs(n); err != nil {
		return err
	}
	load := bench.Load{Workers: o.concurrency, Requests: int64(n)}
	base, err := b.measure(ctx, noop, s, "grpc", reqs, load)
	if err != nil {
		return err
	}
	r, err := b.measure(ctx, cb, s, "grpc", reqs, load)
	if err != nil {
		return err
	}
	if r.Denied > 0 || r.Errors > 0 {
		return fmt.Errorf("dpop: %d denied, %d failed of %d (log: %s)", r.Denied, r.Errors, r.Requests, tail(cb.logPath))
	}
	if err := bench.WriteResults(stdout, b.measurements); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "dpop: warm DPoP-bound token, a new proof per request: server CPU/check %s, %.2fx the no-op's %s (no target; one ES256 proof verification per Check is inherent)\n\n",
		r.ServerCPUPerRequest().Round(100*time.Nanosecond), float64(r.ServerCPUPerRequest())/float64(base.ServerCPUPerRequest()),
		base.ServerCPUPerRequest().Round(100*time.Nanosecond))
	return nil
}

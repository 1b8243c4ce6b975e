package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/certbind/certbind/testenv/bench"
)

// The registry scenario's targets (issue 16).
const (
	registryLoadMax     = 1500 * time.Millisecond // certbind validate of the large registry
	registryValidateMB  = 200                     // its peak RSS
	registryServeMB     = 150                     // certbind serve's peak RSS, load included
	registryDecideRatio = 1.2                     // identity CPU/check, large registry vs ten clients
	registryLoadRuns    = 3
	registrySmall       = 10
)

// registryLoad is `certbind validate` on the large registry: its wall times, sorted, and its
// peak RSS.
type registryLoad struct {
	path string
	took []time.Duration
	peak int64
}

// measureRegistryLoad writes the large registry and times registryLoadRuns runs of `certbind
// validate` on it. Call it before the load generator grows: Linux carries the parent's
// high-water RSS into a child started with vfork and exec (as os/exec starts them), so the
// child's ru_maxrss is the larger of its own peak and the parent's.
func measureRegistryLoad(ctx context.Context, o options, f *bench.Fixture) (registryLoad, error) {
	var l registryLoad
	var err error
	if l.path, err = f.WriteRegistry("registry-large.yaml", o.registry); err != nil {
		return l, err
	}
	for range registryLoadRuns {
		d, rss, err := validateRun(ctx, o.certbind, l.path)
		if err != nil {
			return l, err
		}
		l.took = append(l.took, d)
		l.peak = max(l.peak, rss)
	}
	slices.Sort(l.took)
	return l, nil
}

// runRegistry reports the large registry's load (measured by measureRegistryLoad), then
// measures the peak RSS of `certbind serve` with it, and the server CPU per identity decision
// (which looks the certificate up among all registrations) against the same decision with ten
// clients, in the same run.
func runRegistry(ctx context.Context, o options, f *bench.Fixture, rl registryLoad, dir string, stdout, stderr io.Writer) ([]bench.Check, error) {
	large := rl.path
	small, err := f.WriteRegistry("registry-small.yaml", registrySmall)
	if err != nil {
		return nil, err
	}
	took, peak := rl.took, rl.peak
	fmt.Fprintf(stdout, "registry: %d clients: certbind validate in %s (best of %d; worst %s), peak RSS %s\n",
		o.registry, took[0].Round(time.Millisecond), registryLoadRuns, took[len(took)-1].Round(time.Millisecond), mb(peak))

	args := func(cfg string) []string { return append([]string{"serve", "--config", cfg}, o.certbindArgs...) }
	sSmall, err := startServer(ctx, fmt.Sprintf("certbind/%d", registrySmall), o.certbind, args(small), filepath.Join(dir, "certbind-registry-small.log"))
	if err != nil {
		return nil, err
	}
	defer stopServer(sSmall, stderr)
	start := time.Now()
	sLarge, err := startServer(ctx, fmt.Sprintf("certbind/%d", o.registry), o.certbind, args(large), filepath.Join(dir, "certbind-registry-large.log"))
	if err != nil {
		return nil, err
	}
	defer stopServer(sLarge, stderr)
	fmt.Fprintf(stdout, "registry: certbind serve with %d clients ready in %s\n", o.registry, time.Since(start).Round(time.Millisecond))

	warm, err := f.WarmCredential()
	if err != nil {
		return nil, err
	}
	reqs := []bench.Request{bench.NewRequest(warm, bench.ModeIdentity, 0)}
	s := bench.Scenario{Name: "warm-identity", Kind: bench.Warm, Mode: bench.ModeIdentity}
	b := &bencher{o: o, f: f, stderr: stderr}
	load := bench.Load{Workers: o.concurrency, Warmup: o.warmup, Duration: o.duration}
	rSmall, err := b.measure(ctx, sSmall, s, "grpc", reqs, load)
	if err != nil {
		return nil, err
	}
	rLarge, err := b.measure(ctx, sLarge, s, "grpc", reqs, load)
	if err != nil {
		return nil, err
	}
	servePeak, err := bench.ProcessPeakRSS(sLarge.pid())
	if err != nil {
		return nil, err
	}
	if err := bench.WriteResults(stdout, b.measurements); err != nil {
		return nil, err
	}
	ratio := float64(rLarge.ServerCPUPerRequest()) / float64(rSmall.ServerCPUPerRequest())
	bad := func(r *bench.Result) bool { return r.Errors > 0 || r.Denied > 0 || r.Requests == 0 }
	checks := []bench.Check{
		{Pass: took[0] <= registryLoadMax, What: fmt.Sprintf("registry validate %s (target %s)", took[0].Round(time.Millisecond), registryLoadMax)},
		{Pass: peak <= registryValidateMB<<20, What: fmt.Sprintf("registry validate peak RSS %s (target %d MB)", mb(peak), registryValidateMB)},
		{Pass: servePeak <= registryServeMB<<20, What: fmt.Sprintf("registry serve peak RSS %s (target %d MB)", mb(servePeak), registryServeMB)},
		{Pass: ratio <= registryDecideRatio && !bad(rSmall) && !bad(rLarge),
			What: fmt.Sprintf("registry identity server CPU/check %.2fx of %d clients' (target %.1fx)", ratio, registrySmall, registryDecideRatio)},
	}
	for _, c := range checks {
		mark := "PASS"
		if !c.Pass {
			mark = "FAIL"
		}
		fmt.Fprintf(stdout, "%s: %s\n", mark, c.What)
	}
	fmt.Fprintln(stdout)
	return checks, nil
}

// validateRun runs `certbind validate --config cfg` and returns its wall time and peak RSS.
func validateRun(ctx context.Context, bin, cfg string) (time.Duration, int64, error) {
	cmd := exec.CommandContext(ctx, bin, "validate", "--config", cfg)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("certbind validate %s: %w: %s", cfg, err, out)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0, fmt.Errorf("certbind validate: no resource usage")
	}
	return took, ru.Maxrss << 10, nil // Maxrss is in KiB on Linux
}

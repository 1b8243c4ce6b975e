package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certbind/certbind/testenv/bench"
)

// memoryFirst numbers the memory scenario's certificates apart from the cold pool's.
const memoryFirst = 1 << 40

// memoryResult is certbind's resident set size over the memory scenario.
type memoryResult struct {
	before, peak, after, idle int64
	quarters                  [3]int64 // at 25%, 50% and 75% of the certificates
}

// runMemory drives o.memoryCerts distinct certificates through certbind, minted in the
// background ahead of the load, and samples certbind's RSS before, during and after.
func runMemory(ctx context.Context, o options, f *bench.Fixture, cb *server, stdout, stderr io.Writer) (memoryResult, error) {
	var m memoryResult
	var err error
	if m.before, err = bench.ProcessRSS(cb.pid()); err != nil {
		return m, err
	}
	n := o.memoryCerts
	mode := func(i uint64) bench.Mode {
		switch {
		case o.memoryMode == string(bench.ModeClientAuth), o.memoryMode == "mixed" && i%2 == 0:
			return bench.ModeClientAuth
		}
		return bench.ModeBoundToken
	}
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	frames, genErr := f.Stream(gctx, memoryFirst, n, runtime.GOMAXPROCS(0), 16384, mode)

	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := bench.DialGRPC(dctx, cb.grpcAddr, o.conns)
	dcancel()
	if err != nil {
		return m, err
	}
	defer c.Close()
	var sent atomic.Int64
	send := func(ctx context.Context, worker int, _ uint64) error {
		frame, ok := <-frames
		if !ok {
			select {
			case err := <-genErr:
				return err
			default:
				return errors.New("certificate stream ended early")
			}
		}
		err := c.Check(ctx, worker, frame)
		sent.Add(1)
		return err
	}

	// Sample the RSS while the load runs.
	var peak atomic.Int64
	peak.Store(m.before)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		next, lastLog := 0, time.Now()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			rss, err := bench.ProcessRSS(cb.pid())
			if err != nil {
				continue
			}
			if rss > peak.Load() {
				peak.Store(rss)
			}
			done := sent.Load()
			for next < len(m.quarters) && done >= int64(n)*int64(next+1)/4 {
				m.quarters[next] = rss
				next++
			}
			if time.Since(lastLog) >= 10*time.Second {
				fmt.Fprintf(stderr, "certbind-bench: memory: %d/%d certificates, certbind RSS %s\n", done, n, mb(rss))
				lastLog = time.Now()
			}
		}
	}()
	start := time.Now()
	r, err := bench.Run(ctx, bench.Load{Workers: o.concurrency, Requests: int64(n), PID: cb.pid()}, send)
	close(stop)
	wg.Wait()
	if err != nil {
		return m, err
	}
	if err := cb.alive(); err != nil {
		return m, err
	}
	took := time.Since(start)
	m.peak = peak.Load()
	if m.after, err = bench.ProcessRSS(cb.pid()); err != nil {
		return m, err
	}
	m.peak = max(m.peak, m.after)
	const idle = 10 * time.Second
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		return m, ctx.Err()
	}
	if m.idle, err = bench.ProcessRSS(cb.pid()); err != nil {
		return m, err
	}

	fmt.Fprintf(stdout, "memory: %d distinct certificates (%s) in %s: %.0f rps, server CPU %s/check, errors %d, denied %d\n",
		n, o.memoryMode, took.Round(time.Second), r.RPS(), us(r.ServerCPUPerRequest()), r.Errors, r.Denied)
	if r.Errors > 0 {
		fmt.Fprintf(stdout, "memory: first error: %v\n", r.FirstError)
	}
	if r.Denied > 0 {
		fmt.Fprintf(stdout, "memory: first denial: %s\n", r.FirstDeny)
	}
	var during []string
	for i, q := range m.quarters {
		during = append(during, fmt.Sprintf("%d%% %s", 25*(i+1), mb(q)))
	}
	fmt.Fprintf(stdout, "memory: certbind RSS before %s; during %s, peak %s; after %s; after %s idle %s (target: peak < %.0f MB)\n\n",
		mb(m.before), strings.Join(during, ", "), mb(m.peak), mb(m.after), idle, mb(m.idle), o.memoryMaxMB)
	return m, nil
}

func us(d time.Duration) string { return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond)) }

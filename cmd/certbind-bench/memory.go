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

// memoryIdle is how long certbind idles after the memory scenario before its last RSS sample.
const memoryIdle = 10 * time.Second

// runMemory drives o.memoryCerts distinct certificates through certbind, minted in the
// background ahead of the load, and samples certbind's RSS before, during and after.
func runMemory(ctx context.Context, o options, f *bench.Fixture, cb *server, stdout, stderr io.Writer) (memoryResult, error) {
	var m memoryResult
	var err error
	if m.before, err = bench.ProcessRSS(cb.pid()); err != nil {
		return m, err
	}
	n := o.memoryCerts
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	frames, genErr := f.Stream(gctx, memoryFirst, n, runtime.GOMAXPROCS(0), 16384, memoryModes(o.memoryMode))

	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := bench.DialGRPC(dctx, cb.grpcAddr, o.conns)
	dcancel()
	if err != nil {
		return m, err
	}
	defer c.Close()

	s := &rssSampler{pid: cb.pid(), total: n, stderr: stderr}
	s.peak.Store(m.before)
	send := streamSender(frames, genErr, c, &s.sent)
	s.start()
	start := time.Now()
	r, err := bench.Run(ctx, bench.Load{Workers: o.concurrency, Requests: int64(n), PID: cb.pid()}, send)
	s.stop()
	m.quarters = s.quarters
	if err != nil {
		return m, err
	}
	if err := cb.alive(); err != nil {
		return m, err
	}
	took := time.Since(start)
	m.peak = s.peak.Load()
	if err := m.settle(ctx, cb); err != nil {
		return m, err
	}
	printMemory(stdout, o, m, r, took)
	return m, nil
}

// memoryModes is the request mode of each certificate of --memory-mode: mixed alternates,
// client_auth first.
func memoryModes(mode string) func(i uint64) bench.Mode {
	return func(i uint64) bench.Mode {
		switch {
		case mode == string(bench.ModeClientAuth), mode == "mixed" && i%2 == 0:
			return bench.ModeClientAuth
		}
		return bench.ModeBoundToken
	}
}

// streamSender sends the frames of a certificate stream in turn, each once, counting them in
// sent; when the stream has ended, it fails with the stream's error.
func streamSender(frames <-chan []byte, genErr <-chan error, c *bench.GRPCClient, sent *atomic.Int64) bench.Sender {
	return func(ctx context.Context, worker int, _ uint64) error {
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
}

// rssSampler samples a process's RSS every 250ms while the load runs: its peak, its value as
// the requests sent pass each quarter of total, and a progress line every 10 seconds. sent is
// counted by the Sender.
type rssSampler struct {
	pid      int
	total    int
	stderr   io.Writer
	sent     atomic.Int64
	peak     atomic.Int64
	quarters [3]int64 // written by the sampling goroutine; read after stop
	done     chan struct{}
	wg       sync.WaitGroup
}

func (s *rssSampler) start() {
	s.done = make(chan struct{})
	s.wg.Go(s.run)
}

func (s *rssSampler) stop() {
	close(s.done)
	s.wg.Wait()
}

func (s *rssSampler) run() {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	next, lastLog := 0, time.Now()
	for {
		select {
		case <-s.done:
			return
		case <-tick.C:
		}
		rss, err := bench.ProcessRSS(s.pid)
		if err != nil {
			continue
		}
		if rss > s.peak.Load() {
			s.peak.Store(rss)
		}
		done := s.sent.Load()
		for next < len(s.quarters) && done >= int64(s.total)*int64(next+1)/4 {
			s.quarters[next] = rss
			next++
		}
		if time.Since(lastLog) >= 10*time.Second {
			fmt.Fprintf(s.stderr, "certbind-bench: memory: %d/%d certificates, certbind RSS %s\n", done, s.total, mb(rss))
			lastLog = time.Now()
		}
	}
}

// settle samples certbind's RSS right after the load (raising the peak if need be) and again
// after memoryIdle.
func (m *memoryResult) settle(ctx context.Context, cb *server) error {
	var err error
	if m.after, err = bench.ProcessRSS(cb.pid()); err != nil {
		return err
	}
	m.peak = max(m.peak, m.after)
	select {
	case <-time.After(memoryIdle):
	case <-ctx.Done():
		return ctx.Err()
	}
	m.idle, err = bench.ProcessRSS(cb.pid())
	return err
}

// printMemory reports the memory scenario: its load, then certbind's RSS along it.
func printMemory(w io.Writer, o options, m memoryResult, r *bench.Result, took time.Duration) {
	fmt.Fprintf(w, "memory: %d distinct certificates (%s) in %s: %.0f rps, server CPU %s/check, errors %d, denied %d\n",
		o.memoryCerts, o.memoryMode, took.Round(time.Second), r.RPS(), us(r.ServerCPUPerRequest()), r.Errors, r.Denied)
	if r.Errors > 0 {
		fmt.Fprintf(w, "memory: first error: %v\n", r.FirstError)
	}
	if r.Denied > 0 {
		fmt.Fprintf(w, "memory: first denial: %s\n", r.FirstDeny)
	}
	var during []string
	for i, q := range m.quarters {
		during = append(during, fmt.Sprintf("%d%% %s", 25*(i+1), mb(q)))
	}
	fmt.Fprintf(w, "memory: certbind RSS before %s; during %s, peak %s; after %s; after %s idle %s (target: peak < %.0f MB)\n\n",
		mb(m.before), strings.Join(during, ", "), mb(m.peak), mb(m.after), memoryIdle, mb(m.idle), o.memoryMaxMB)
}

func us(d time.Duration) string { return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond)) }

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Sender sends one request. seq numbers the calls of one Run from 0, warmup included, so a
// scenario can map it to a request of its pool. A request the server answered with a denial
// returns a *DeniedError; any other error is a failed request.
type Sender func(ctx context.Context, worker int, seq uint64) error

// DeniedError is a request the server answered, with a denial. Detail is what the server
// said (the gRPC status message, or the HTTP status and x-certbind-reason).
type DeniedError struct{ Detail string }

func (e *DeniedError) Error() string { return "denied: " + e.Detail }

// Load is how hard and how long to drive a Sender.
type Load struct {
	// Workers is the number of concurrent requests, each worker sending its next request as soon
	// as the previous one is answered (a closed loop). Default 50.
	Workers int
	// Warmup runs before the measurement; nothing of it is recorded.
	Warmup time.Duration
	// Duration is the measured time. When Requests is set instead, exactly Requests measured
	// requests are sent.
	Duration time.Duration
	Requests int64
	// PID is the server process whose CPU time is measured; 0 measures none.
	PID int
}

// Result is what one Run measured. Only requests that completed inside the measured window
// count; the CPU time is the difference of readings at its start and end.
type Result struct {
	Requests int64 // completed in the window, whatever the outcome
	Errors   int64 // failed: transport errors, gRPC errors, unexpected HTTP answers
	Denied   int64 // answered with a denial
	// Issued is how many times the Sender was called, warmup included: the next Run of the same
	// pool should start there.
	Issued    uint64
	Elapsed   time.Duration
	Latency   Histogram // of every request in the window, whatever the outcome
	ServerCPU time.Duration
	ClientCPU time.Duration // this process: the load generator's own cost
	// OtherCPU is the CPU time everything else on the machine used meanwhile: when it is not
	// small, other work competed with the measurement.
	OtherCPU   time.Duration
	FirstError error
	FirstDeny  string
}

// RPS is requests completed per second of the window.
func (r *Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Add sums o into r, as if r's window went on with o's: counts, times and latencies add up, the
// first error and denial stay.
func (r *Result) Add(o *Result) {
	r.Requests += o.Requests
	r.Errors += o.Errors
	r.Denied += o.Denied
	r.Issued += o.Issued
	r.Elapsed += o.Elapsed
	r.Latency.Merge(&o.Latency)
	r.ServerCPU += o.ServerCPU
	r.ClientCPU += o.ClientCPU
	r.OtherCPU += o.OtherCPU
	if r.FirstError == nil {
		r.FirstError = o.FirstError
	}
	if r.FirstDeny == "" {
		r.FirstDeny = o.FirstDeny
	}
}

// ServerCPUPerRequest is the server's CPU time divided by the requests of the window.
func (r *Result) ServerCPUPerRequest() time.Duration { return perRequest(r.ServerCPU, r.Requests) }

// OtherLoad is OtherCPU as a fraction of all the CPUs over the window: 0.25 on two CPUs means
// half a CPU was busy with something else than the server and the load generator.
func (r *Result) OtherLoad() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OtherCPU) / (float64(r.Elapsed) * float64(runtime.NumCPU()))
}

// ClientCPUPerRequest is this process's CPU time divided by the requests of the window.
func (r *Result) ClientCPUPerRequest() time.Duration { return perRequest(r.ClientCPU, r.Requests) }

func perRequest(d time.Duration, n int64) time.Duration {
	if n == 0 {
		return 0
	}
	return d / time.Duration(n)
}

// phases of a run, in order.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseDone
)

// worker is one worker's tally, on its own cache lines.
type worker struct {
	hist     Histogram
	requests int64
	errors   int64
	denied   int64
	firstErr error
	deny     string
	_        [64]byte
}

// Run drives send with l.Workers concurrent workers: the warmup, then the measured window.
// Latency is taken around each call to send. It returns when every worker has stopped, or with
// ctx's error if ctx ended first.
func Run(ctx context.Context, l Load, send Sender) (*Result, error) {
	if l.Workers <= 0 {
		l.Workers = 50
	}
	if (l.Duration > 0) == (l.Requests > 0) {
		return nil, errors.New("bench: set exactly one of Load.Duration and Load.Requests")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	r := &loadRun{l: l, send: send, cancel: cancel, allDone: make(chan struct{})}
	r.start(ctx)
	if err := r.warmup(ctx); err != nil {
		return r.stop(err)
	}
	cpu0, err := readCPU(l.PID)
	if err != nil {
		return r.stop(err)
	}
	t0 := time.Now()
	r.phase.Store(phaseMeasure)
	if err := r.window(ctx); err != nil {
		return r.stop(err)
	}
	r.phase.Store(phaseDone)
	elapsed := time.Since(t0)
	cpu1, err := readCPU(l.PID)
	<-r.allDone
	if err != nil {
		return nil, err
	}
	return r.result(elapsed, cpu0, cpu1), nil
}

// loadRun is one Run: its workers and the phase they are in.
type loadRun struct {
	l        Load
	send     Sender
	cancel   context.CancelFunc
	phase    atomic.Int32
	seq      atomic.Uint64
	measured atomic.Int64 // Requests mode: measured requests started
	workers  []*worker
	allDone  chan struct{} // closed when every worker has returned
}

// start starts the workers, in the measured phase already when there is no warmup.
func (r *loadRun) start(ctx context.Context) {
	if r.l.Warmup <= 0 {
		r.phase.Store(phaseMeasure)
	}
	var wg sync.WaitGroup
	r.workers = make([]*worker, r.l.Workers)
	for i := range r.workers {
		w := &worker{}
		r.workers[i] = w
		wg.Go(func() { r.work(ctx, i, w) })
	}
	go func() { wg.Wait(); close(r.allDone) }()
}

// work is worker i's closed loop: send, wait for the answer, record it if it completed inside
// the measured window, send again; until the run is done, ctx ends, or in Requests mode the
// measured requests have all been started.
func (r *loadRun) work(ctx context.Context, i int, w *worker) {
	for ctx.Err() == nil {
		p := r.phase.Load()
		if p == phaseDone {
			return
		}
		if p == phaseMeasure && r.l.Requests > 0 && r.measured.Add(1) > r.l.Requests {
			return
		}
		start := time.Now()
		err := r.send(ctx, i, r.seq.Add(1)-1)
		took := time.Since(start)
		// Count what completed inside the window: in a closed loop the requests in
		// flight at its start stand in for those in flight at its end.
		if r.phase.Load() != phaseMeasure || p != phaseMeasure && r.l.Requests > 0 {
			continue
		}
		w.record(took, err)
	}
}

// record tallies one measured request.
func (w *worker) record(took time.Duration, err error) {
	w.hist.Record(took)
	w.requests++
	var de *DeniedError
	switch {
	case err == nil:
	case errors.As(err, &de):
		w.denied++
		if w.deny == "" {
			w.deny = de.Detail
		}
	default:
		w.errors++
		if w.firstErr == nil {
			w.firstErr = err
		}
	}
}

// warmup waits out l.Warmup, if any.
func (r *loadRun) warmup(ctx context.Context) error {
	if r.l.Warmup <= 0 {
		return nil
	}
	select {
	case <-time.After(r.l.Warmup):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-r.allDone:
		return errors.New("bench: every worker stopped during the warmup")
	}
}

// window waits for the end of the measured window: every worker stopped in Requests mode,
// l.Duration elapsed (or every worker stopped) otherwise.
func (r *loadRun) window(ctx context.Context) error {
	if r.l.Requests > 0 {
		select {
		case <-r.allDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case <-time.After(r.l.Duration):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-r.allDone:
		return nil
	}
}

// stop ends the run early with err, once every worker has returned.
func (r *loadRun) stop(err error) (*Result, error) {
	r.phase.Store(phaseDone)
	r.cancel()
	<-r.allDone
	return nil, err
}

// result adds up the workers' tallies and the CPU time between the readings.
func (r *loadRun) result(elapsed time.Duration, cpu0, cpu1 cpuReading) *Result {
	res := &Result{Issued: r.seq.Load(), Elapsed: elapsed, ServerCPU: cpu1.server - cpu0.server, ClientCPU: cpu1.client - cpu0.client}
	res.OtherCPU = max(cpu1.machine-cpu0.machine-res.ServerCPU-res.ClientCPU, 0)
	for _, w := range r.workers {
		res.Latency.Merge(&w.hist)
		res.Requests += w.requests
		res.Errors += w.errors
		res.Denied += w.denied
		if res.FirstError == nil {
			res.FirstError = w.firstErr
		}
		if res.FirstDeny == "" {
			res.FirstDeny = w.deny
		}
	}
	return res
}

type cpuReading struct{ server, client, machine time.Duration }

func readCPU(pid int) (cpuReading, error) {
	var c cpuReading
	var err error
	if pid > 0 {
		if c.server, err = ProcessCPU(pid); err != nil {
			return c, fmt.Errorf("bench: server CPU: %w", err)
		}
	}
	if c.client, err = ProcessCPU(os.Getpid()); err != nil {
		return c, fmt.Errorf("bench: own CPU: %w", err)
	}
	if c.machine, err = MachineCPU(); err != nil {
		return c, fmt.Errorf("bench: machine CPU: %w", err)
	}
	return c, nil
}

// Package soak drives a sustained, mixed workload through the in-process test bed (package
// stack: the Envoy stand-ins in front of certbind) and checks every answer against the outcome
// it must have: valid and every kind of invalid request, interleaved. It reports wrong
// decisions (the only acceptable number is zero), throughput, latency per window, goroutines and
// resident memory, so a leak or a slow drift shows.
//
//	r, err := soak.Run(ctx, soak.Options{Duration: 30 * time.Second})
package soak

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certbind/certbind/testenv/stack"
)

// Options tune a run.
type Options struct {
	Duration time.Duration // default 30s
	Workers  int           // concurrent clients; default 16
	Window   time.Duration // latency window; default 5s
	// Restarts, when positive, restarts certbind that many times during the run, evenly spaced;
	// answers while it is down must be 503 (Envoy's status_on_error), never a wrong allow.
	Restarts int
}

// Report is what a run found.
type Report struct {
	Requests       int64
	Wrong          int64            // answers that differ from the expected outcome
	WrongAllows    int64            // of which a request that had to be denied was let through
	Unavailable    int64            // 503s while certbind was restarting (allowed only then)
	Examples       []string         // a few wrong answers
	ByCase         map[string]int64 // requests per case
	WindowP99      []time.Duration  // p99 latency per window
	GoroutinesBase int              // after warm-up
	GoroutinesEnd  int              // after the run, idle connections closed
	RSSStartKB     int64            // resident memory after warm-up
	RSSEndKB       int64            // at the end
	Elapsed        time.Duration
}

// goroutineMargin is how many more goroutines than at the start a run may end with (runtime
// and HTTP client helpers that start lazily).
const goroutineMargin = 20

// OK reports whether the run found nothing wrong: zero wrong decisions, no goroutine growth
// beyond a small margin, resident memory flat within a margin.
func (r Report) OK() bool { return len(r.Problems()) == 0 }

// Problems lists what makes the run fail.
func (r Report) Problems() []string {
	var p []string
	if r.Wrong > 0 {
		p = append(p, fmt.Sprintf("%d wrong decisions (%d wrong allows)", r.Wrong, r.WrongAllows))
	}
	if r.Requests == 0 {
		p = append(p, "no requests were made")
	}
	if r.GoroutinesEnd > r.GoroutinesBase+goroutineMargin {
		p = append(p, fmt.Sprintf("goroutines grew from %d to %d", r.GoroutinesBase, r.GoroutinesEnd))
	}
	if r.RSSStartKB > 0 && r.RSSEndKB > r.RSSStartKB*3/2+64<<10 {
		p = append(p, fmt.Sprintf("resident memory grew from %d KB to %d KB", r.RSSStartKB, r.RSSEndKB))
	}
	return p
}

// Print writes a summary.
func (r Report) Print(w io.Writer) {
	fmt.Fprintf(w, "requests      %d in %s (%.0f/s)\n", r.Requests, r.Elapsed.Round(time.Millisecond), float64(r.Requests)/r.Elapsed.Seconds())
	fmt.Fprintf(w, "wrong         %d (wrong allows %d)\n", r.Wrong, r.WrongAllows)
	if r.Unavailable > 0 {
		fmt.Fprintf(w, "503 during certbind restarts  %d\n", r.Unavailable)
	}
	names := make([]string, 0, len(r.ByCase))
	for n := range r.ByCase {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-46s %d\n", n, r.ByCase[n])
	}
	p99 := make([]string, len(r.WindowP99))
	for i, d := range r.WindowP99 {
		p99[i] = d.Round(10 * time.Microsecond).String()
	}
	fmt.Fprintf(w, "p99 per window  %s\n", strings.Join(p99, " "))
	fmt.Fprintf(w, "goroutines    %d -> %d\n", r.GoroutinesBase, r.GoroutinesEnd)
	fmt.Fprintf(w, "RSS           %d KB -> %d KB\n", r.RSSStartKB, r.RSSEndKB)
	for _, e := range r.Examples {
		fmt.Fprintf(w, "  wrong: %s\n", e)
	}
	if r.OK() {
		fmt.Fprintln(w, "soak: PASS")
	} else {
		fmt.Fprintf(w, "soak: FAIL: %s\n", strings.Join(r.Problems(), "; "))
	}
}

// Run starts a stack and soaks it.
func Run(ctx context.Context, o Options) (Report, error) {
	o = o.withDefaults()
	s, err := stack.Start(stack.Options{})
	if err != nil {
		return Report{}, err
	}
	r, err := newRunner(s)
	if err != nil {
		s.Close()
		return Report{}, err
	}
	sk := newSoak(r, cases())
	// Warm-up: every case once, then the baselines.
	sk.warmUp()
	rep := Report{ByCase: map[string]int64{}, GoroutinesBase: runtime.NumGoroutine(), RSSStartKB: rssKB()}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < o.Workers; w++ {
		wg.Go(func() { sk.work(ctx, uint64(w+1)) })
	}
	if err := sk.drive(ctx, o, start, &rep); err != nil {
		cancel()
		wg.Wait()
		s.Close()
		return rep, err
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	if d, ok := sk.lastWindow(); ok {
		rep.WindowP99 = append(rep.WindowP99, d)
	}
	rep.RSSEndKB = rssKB()
	sk.count(&rep)
	for _, c := range r.clients {
		c.CloseIdleConnections()
	}
	s.Close()
	rep.GoroutinesEnd = settledGoroutines(rep.GoroutinesBase)
	return rep, nil
}

func (o Options) withDefaults() Options {
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.Window <= 0 {
		o.Window = 5 * time.Second
	}
	return o
}

// restartProbe is the index in cases() of the case that tells whether the proxies reach
// certbind again after a restart.
const restartProbe = 3

// soak is the state the workers of one run share: what they counted and the latencies of the
// current window.
type soak struct {
	r           *runner
	cs          []testCase
	requests    atomic.Int64
	wrong       atomic.Int64
	wrongAllows atomic.Int64
	unavailable atomic.Int64
	// restarts counts certbind going down and coming back: odd while it is down. A request
	// that overlapped a restart may fail closed with 503.
	restarts atomic.Int64
	byCase   []atomic.Int64 // per case, indexed like cs

	mu       sync.Mutex
	lat      []time.Duration // of the current window
	examples []string
}

func newSoak(r *runner, cs []testCase) *soak {
	return &soak{r: r, cs: cs, byCase: make([]atomic.Int64, len(cs))}
}

// warmUp sends every case once, counting nothing.
func (sk *soak) warmUp() {
	for _, c := range sk.cs {
		c.run(sk.r)
	}
}

// work sends randomly chosen cases until ctx ends.
func (sk *soak) work(ctx context.Context, seed uint64) {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for ctx.Err() == nil {
		sk.send(rnd.IntN(len(sk.cs)))
	}
}

// send sends case i and checks the answer: the one it must get, or a 503 while certbind was
// restarting; anything else is wrong.
func (sk *soak) send(i int) {
	c := sk.cs[i]
	t0, epoch := time.Now(), sk.restarts.Load()
	status, code, err := c.run(sk.r)
	d := time.Since(t0)
	sk.requests.Add(1)
	sk.byCase[i].Add(1)
	sk.mu.Lock()
	sk.lat = append(sk.lat, d)
	sk.mu.Unlock()
	if c.want(status, code, err) {
		return
	}
	if status == http.StatusServiceUnavailable && (epoch%2 == 1 || sk.restarts.Load() != epoch) {
		sk.unavailable.Add(1) // certbind restarting: Envoy fails closed
		return
	}
	sk.wrong.Add(1)
	if !c.allow && status == http.StatusOK {
		sk.wrongAllows.Add(1)
	}
	sk.mu.Lock()
	if len(sk.examples) < 10 {
		sk.examples = append(sk.examples, fmt.Sprintf("%s: got %d %q %v", c.name, status, code, err))
	}
	sk.mu.Unlock()
}

// drive runs until ctx ends: it closes a latency window into rep every o.Window and, with
// o.Restarts, restarts certbind that many times, evenly spaced from start.
func (sk *soak) drive(ctx context.Context, o Options, start time.Time, rep *Report) error {
	ticker := time.NewTicker(o.Window)
	defer ticker.Stop()
	var restartEvery time.Duration
	if o.Restarts > 0 {
		restartEvery = o.Duration / time.Duration(o.Restarts+1)
	}
	nextRestart := start.Add(restartEvery)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			rep.WindowP99 = append(rep.WindowP99, sk.closeWindow())
		case <-time.After(50 * time.Millisecond):
			if restartEvery > 0 && time.Now().After(nextRestart) {
				if err := sk.restartCertbind(); err != nil {
					return err
				}
				nextRestart = nextRestart.Add(restartEvery)
			}
		}
	}
}

// closeWindow returns the p99 latency of the current window and starts the next.
func (sk *soak) closeWindow() time.Duration {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	d := p99(sk.lat)
	sk.lat = sk.lat[:0]
	return d
}

// lastWindow is the p99 latency of the window the run ended in, if it saw a request.
func (sk *soak) lastWindow() (time.Duration, bool) {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if len(sk.lat) == 0 {
		return 0, false
	}
	return p99(sk.lat), true
}

// restartCertbind stops certbind and starts it again, counting it down until the proxies
// reach it again.
func (sk *soak) restartCertbind() error {
	sk.restarts.Add(1)
	sk.r.s.StopCertbind()
	time.Sleep(200 * time.Millisecond)
	if err := sk.r.s.RestartCertbind(); err != nil {
		return err
	}
	sk.awaitProxies()
	sk.restarts.Add(1)
	return nil
}

// awaitProxies waits, up to 15s, until the restart probe gets an answer other than 503. Down
// until the proxies have reconnected (gRPC reconnects with backoff): a 503 until then is the
// proxy failing closed, not a decision.
func (sk *soak) awaitProxies() {
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if st, _, _ := sk.cs[restartProbe].run(sk.r); st != http.StatusServiceUnavailable {
			break
		}
	}
}

// count copies the counts into rep.
func (sk *soak) count(rep *Report) {
	rep.Requests, rep.Wrong, rep.WrongAllows, rep.Unavailable = sk.requests.Load(), sk.wrong.Load(), sk.wrongAllows.Load(), sk.unavailable.Load()
	rep.Examples = sk.examples
	for i, c := range sk.cs {
		rep.ByCase[c.name] = sk.byCase[i].Load()
	}
}

// settledGoroutines counts the goroutines once those of closed connections and servers have
// ended. They end asynchronously after Close; a leak is what is still there once they have had
// time to, so wait (on a busy machine, up to 10s) for the count to come within goroutineMargin
// of base.
func settledGoroutines(base int) int {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		n := runtime.NumGoroutine()
		if n <= base+goroutineMargin || time.Now().After(deadline) {
			return n
		}
	}
}

func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)*99)/100]
}

// rssKB reads this process's resident set size (Linux); 0 elsewhere.
func rssKB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

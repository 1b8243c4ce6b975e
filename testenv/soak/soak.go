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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/certbind/certbind/testenv/stack"
	"github.com/certbind/certbind/testenv/testbed"
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

// testCase is one kind of request with the answer it must get.
type testCase struct {
	name  string
	allow bool // the request must be let through
	run   func(c *runner) (status int, errCode string, err error)
	want  func(status int, errCode string, err error) bool
}

type runner struct {
	s       *stack.Stack
	clients map[string]*http.Client
	tokens  map[string]string // client -> a bound token
}

func (r *runner) post(cert, base, path string, form url.Values, hdr map[string]string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return r.do(cert, req)
}

func (r *runner) get(cert, base, path, bearer string, hdr map[string]string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", bearer)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return r.do(cert, req)
}

func (r *runner) do(cert string, req *http.Request) (int, string, error) {
	resp, err := r.clients[cert].Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
		Sub   string `json:"access_token"`
	}
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode == http.StatusOK {
		// The echo API says who certbind said the caller is; a token response carries a token.
		var echo struct {
			Headers map[string]string `json:"headers"`
		}
		if json.Unmarshal(body, &echo) == nil && echo.Headers != nil {
			return resp.StatusCode, "client=" + echo.Headers["x-certbind-client-id"], nil
		}
		if e.Sub != "" {
			return resp.StatusCode, "token", nil
		}
	}
	return resp.StatusCode, e.Error, nil
}

func is(status int, code string) func(int, string, error) bool {
	return func(s int, c string, err error) bool { return err == nil && s == status && c == code }
}

// tlsRefused: the request failed at the connection, which the front proxy closed on the
// client's certificate. With TLS 1.3 the client learns it after its handshake, so requests
// sharing that HTTP/2 connection see the close in other words than the alert; but a proxy that
// is down (connection refused) or hangs (timeout) is broken, not strict, and fails the case.
func tlsRefused(_ int, _ string, err error) bool {
	var ne net.Error
	return err != nil && !errors.Is(err, syscall.ECONNREFUSED) && !(errors.As(err, &ne) && ne.Timeout())
}

func cases() []testCase {
	form := func(id string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "scope": {"read"}}
	}
	return []testCase{
		{"token: billing (subject DN)", true, func(c *runner) (int, string, error) {
			return c.post(testbed.Billing, c.s.FrontURL, "/oauth2/token", form("billing"), nil)
		}, is(200, "token")},
		{"token: partner (self-signed)", true, func(c *runner) (int, string, error) {
			return c.post(testbed.Partner, c.s.SelfURL, "/oauth2/token", form("partner"), nil)
		}, is(200, "token")},
		{"api: bound token with its certificate", true, func(c *runner) (int, string, error) {
			return c.get(testbed.Billing, c.s.FrontURL, "/api/orders", "Bearer "+c.tokens[testbed.Billing], nil)
		}, is(200, "client=billing")},
		// index 3, the restart probe:
		{"identity: inventory", true, func(c *runner) (int, string, error) {
			return c.get(testbed.Inventory, c.s.FrontURL, "/internal/stock", "", map[string]string{"x-certbind-client-id": "billing"})
		}, is(200, "client=inventory")},
		{"deny: token replayed with another certificate", false, func(c *runner) (int, string, error) {
			return c.get(testbed.Reports, c.s.FrontURL, "/api/orders", "Bearer "+c.tokens[testbed.Billing], nil)
		}, is(401, "invalid_token")},
		{"deny: another client's client_id", false, func(c *runner) (int, string, error) {
			return c.post(testbed.Reports, c.s.FrontURL, "/oauth2/token", form("billing"), nil)
		}, is(401, "invalid_client")},
		{"deny: forged x-forwarded-client-cert", false, func(c *runner) (int, string, error) {
			return c.post(testbed.Reports, c.s.FrontURL, "/oauth2/token", form("billing"),
				map[string]string{"x-forwarded-client-cert": "Hash=" + strings.Repeat("a", 64)})
		}, is(401, "invalid_client")},
		{"deny: conflicting client_id", false, func(c *runner) (int, string, error) {
			return c.post(testbed.Billing, c.s.FrontURL, "/oauth2/token?client_id=reports", form("billing"), nil)
		}, is(400, "invalid_request")},
		{"deny: no token", false, func(c *runner) (int, string, error) {
			return c.get(testbed.Billing, c.s.FrontURL, "/api/orders", "", nil)
		}, is(401, "")},
		{"deny: tampered token", false, func(c *runner) (int, string, error) {
			return c.get(testbed.Billing, c.s.FrontURL, "/api/orders", "Bearer "+c.tokens[testbed.Billing]+"A", nil)
		}, is(401, "invalid_token")},
		{"deny: two Authorization values", false, func(c *runner) (int, string, error) {
			return c.get(testbed.Billing, c.s.FrontURL, "/api/orders", "Bearer a, Bearer b", nil)
		}, is(400, "invalid_request")},
		{"deny: insufficient scope", false, func(c *runner) (int, string, error) {
			return c.get(testbed.Billing, c.s.FrontURL, "/api/admin/users", "Bearer "+c.tokens[testbed.Billing], nil)
		}, is(403, "insufficient_scope")},
		{"deny: self-signed certificate for a PKI client", false, func(c *runner) (int, string, error) {
			return c.post(testbed.Partner, c.s.SelfURL, "/oauth2/token", form("billing"), nil)
		}, is(401, "invalid_client")},
		{"deny: expired certificate (TLS)", false, func(c *runner) (int, string, error) {
			return c.get(testbed.Expired, c.s.FrontURL, "/internal/stock", "", nil)
		}, tlsRefused},
	}
}

// Run starts a stack and soaks it.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.Window <= 0 {
		o.Window = 5 * time.Second
	}
	s, err := stack.Start(stack.Options{})
	if err != nil {
		return Report{}, err
	}
	r := &runner{s: s, clients: map[string]*http.Client{}, tokens: map[string]string{}}
	for _, name := range testbed.Clients() {
		c, err := s.Client(name)
		if err != nil {
			s.Close()
			return Report{}, err
		}
		r.clients[name] = c
	}
	tok, err := fetchToken(r, testbed.Billing, "billing")
	if err != nil {
		s.Close()
		return Report{}, err
	}
	r.tokens[testbed.Billing] = tok

	cs := cases()
	// Warm-up: every case once, then the baselines.
	for _, c := range cs {
		c.run(r)
	}
	rep := Report{ByCase: map[string]int64{}, GoroutinesBase: runtime.NumGoroutine(), RSSStartKB: rssKB()}
	var (
		mu       sync.Mutex
		lat      []time.Duration
		requests atomic.Int64
		wrong    atomic.Int64
		wrongAll atomic.Int64
		unavail  atomic.Int64
		// restarts counts certbind going down and coming back: odd while it is down. A request
		// that overlapped a restart may fail closed with 503.
		restarts atomic.Int64
		byCase   = make([]atomic.Int64, len(cs))
		examples []string
	)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < o.Workers; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
			for ctx.Err() == nil {
				i := rnd.IntN(len(cs))
				c := cs[i]
				t0, epoch := time.Now(), restarts.Load()
				status, code, err := c.run(r)
				d := time.Since(t0)
				requests.Add(1)
				byCase[i].Add(1)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
				if c.want(status, code, err) {
					continue
				}
				if status == http.StatusServiceUnavailable && (epoch%2 == 1 || restarts.Load() != epoch) {
					unavail.Add(1) // certbind restarting: Envoy fails closed
					continue
				}
				wrong.Add(1)
				if !c.allow && status == http.StatusOK {
					wrongAll.Add(1)
				}
				mu.Lock()
				if len(examples) < 10 {
					examples = append(examples, fmt.Sprintf("%s: got %d %q %v", c.name, status, code, err))
				}
				mu.Unlock()
			}
		}(uint64(w + 1))
	}
	// Latency windows and restarts.
	ticker := time.NewTicker(o.Window)
	var restartEvery time.Duration
	if o.Restarts > 0 {
		restartEvery = o.Duration / time.Duration(o.Restarts+1)
	}
	nextRestart := start.Add(restartEvery)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-ticker.C:
			mu.Lock()
			rep.WindowP99 = append(rep.WindowP99, p99(lat))
			lat = lat[:0]
			mu.Unlock()
		case <-time.After(50 * time.Millisecond):
			if restartEvery > 0 && time.Now().After(nextRestart) {
				restarts.Add(1)
				s.StopCertbind()
				time.Sleep(200 * time.Millisecond)
				if err := s.RestartCertbind(); err != nil {
					cancel()
					wg.Wait()
					s.Close()
					return rep, err
				}
				// Down until the proxies have reconnected (gRPC reconnects with backoff): a 503
				// until then is the proxy failing closed, not a decision.
				for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					if st, _, _ := cs[3].run(r); st != http.StatusServiceUnavailable {
						break
					}
				}
				restarts.Add(1)
				nextRestart = nextRestart.Add(restartEvery)
			}
		}
	}
	ticker.Stop()
	wg.Wait()
	rep.Elapsed = time.Since(start)
	mu.Lock()
	if len(lat) > 0 {
		rep.WindowP99 = append(rep.WindowP99, p99(lat))
	}
	mu.Unlock()
	rep.RSSEndKB = rssKB()
	rep.Requests, rep.Wrong, rep.WrongAllows, rep.Unavailable = requests.Load(), wrong.Load(), wrongAll.Load(), unavail.Load()
	rep.Examples = examples
	for i, c := range cs {
		rep.ByCase[c.name] = byCase[i].Load()
	}
	for _, c := range r.clients {
		c.CloseIdleConnections()
	}
	s.Close()
	// Connection and server goroutines end asynchronously after Close; a leak is what is still
	// there once they have had time to, so wait (on a busy machine, up to 10s) before counting.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		rep.GoroutinesEnd = runtime.NumGoroutine()
		if rep.GoroutinesEnd <= rep.GoroutinesBase+goroutineMargin || time.Now().After(deadline) {
			break
		}
	}
	return rep, nil
}

func fetchToken(r *runner, cert, id string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "scope": {"read"}}
	req, _ := http.NewRequest(http.MethodPost, r.s.FrontURL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := r.clients[cert].Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("soak: no token for %s (HTTP %d)", id, resp.StatusCode)
	}
	return tr.AccessToken, nil
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

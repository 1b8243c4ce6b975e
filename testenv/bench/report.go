package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Metric is what a target bounds: a ratio of certbind's figure to the no-op server's.
type Metric string

// The metrics targets bound.
const (
	MetricCPU Metric = "cpu/check" // server CPU time per request
	MetricP99 Metric = "p99"       // 99th percentile latency
)

// Target bounds the ratio of one metric for every scenario of a kind, or for the one scenario
// named, over every transport or the one named. A Target with Max 0 bounds nothing: its ratio
// is reported for information.
type Target struct {
	Kind      Kind
	Scenario  string // "" for every scenario of Kind
	Transport string // "" for every transport
	Metric    Metric
	Max       float64
}

// Targets are those of the performance issues: on the cached hot path certbind costs at most
// 1.3 times the CPU of a no-op server and adds at most half its p99. Cold (issue 16, over
// gRPC), the inherent cost is one ECDSA P-256 verification per new signature: a new leaf under
// a known intermediate at most 2.8 times the no-op's CPU, a new leaf and a new ES256 token 3.6
// times. Over HTTP the cold ratios are reported without a target: the HTTP no-op answers an
// empty 200 for about 36 µs, so its work plus one signature check (about 64 µs) is already 2.8
// times it, with nothing left for certbind's own reading, deciding and writing.
var Targets = []Target{
	{Kind: Warm, Metric: MetricCPU, Max: 1.3},
	{Kind: Warm, Metric: MetricP99, Max: 1.5},
	{Kind: Cold, Scenario: "cold", Transport: "grpc", Metric: MetricCPU, Max: 3.6},
	{Kind: Cold, Scenario: "cold-client-auth", Transport: "grpc", Metric: MetricCPU, Max: 2.8},
	{Kind: Cold, Transport: "http", Metric: MetricCPU},
}

// Measurement is one run of a scenario against one server.
type Measurement struct {
	Transport string // grpc or http
	Scenario  Scenario
	Server    string
	Result    *Result
}

// Comparison pairs the runs of one scenario against the baseline and the server under test.
type Comparison struct {
	Transport     string
	Scenario      Scenario
	Base, Subject *Result
}

// Ratio is the subject's metric divided by the baseline's.
func (c Comparison) Ratio(m Metric) float64 {
	var s, b time.Duration
	switch m {
	case MetricCPU:
		s, b = c.Subject.ServerCPUPerRequest(), c.Base.ServerCPUPerRequest()
	case MetricP99:
		s, b = c.Subject.Latency.Quantile(0.99), c.Base.Latency.Quantile(0.99)
	}
	if b <= 0 {
		return 0
	}
	return float64(s) / float64(b)
}

// Problem says why the comparison measures something else than intended: failed requests, or
// denials where every request should be allowed. "" when there is none.
func (c Comparison) Problem() string {
	var p []string
	for _, x := range []struct {
		who string
		r   *Result
	}{{"baseline", c.Base}, {"subject", c.Subject}} {
		switch {
		case x.r.Requests == 0:
			p = append(p, x.who+" completed no request")
		case x.r.Errors > 0:
			p = append(p, fmt.Sprintf("%s: %d errors (first: %v)", x.who, x.r.Errors, x.r.FirstError))
		case x.r.Denied > 0:
			p = append(p, fmt.Sprintf("%s denied %d (first: %s)", x.who, x.r.Denied, x.r.FirstDeny))
		}
	}
	return strings.Join(p, "; ")
}

// NoisyLoad is the share of the machine's CPUs that other processes may use during a run before
// its figures are called unreliable.
const NoisyLoad = 0.10

// Noise says when other processes competed with the runs of the comparison, "" if they did not.
func (c Comparison) Noise() string {
	var p []string
	for _, x := range []struct {
		who string
		r   *Result
	}{{"baseline", c.Base}, {"subject", c.Subject}} {
		if l := x.r.OtherLoad(); l > NoisyLoad {
			p = append(p, fmt.Sprintf("%s run %.0f%%", x.who, 100*l))
		}
	}
	if len(p) == 0 {
		return ""
	}
	return "other processes used the CPUs (" + strings.Join(p, ", ") + "): unreliable, rerun on a quiet machine"
}

// Verdict is one target applied to one comparison. A Target without Max passes: it reports.
type Verdict struct {
	Comparison
	Target Target
	Ratio  float64
	Pass   bool
}

// Judge applies every target to the comparisons of its kind. A comparison with a Problem fails.
func Judge(cs []Comparison, targets []Target) []Verdict {
	var out []Verdict
	for _, c := range cs {
		for _, t := range targets {
			if t.Kind != c.Scenario.Kind || (t.Scenario != "" && t.Scenario != c.Scenario.Name) || (t.Transport != "" && t.Transport != c.Transport) {
				continue
			}
			r := c.Ratio(t.Metric)
			if t.Max == 0 {
				out = append(out, Verdict{Comparison: c, Target: t, Ratio: r, Pass: true})
				continue
			}
			out = append(out, Verdict{Comparison: c, Target: t, Ratio: r, Pass: r > 0 && r <= t.Max && c.Problem() == ""})
		}
	}
	return out
}

// Check is the outcome of a target outside the ratios, such as memory.
type Check struct {
	What string // what was measured against what, e.g. "memory peak RSS 120.5 MB <= 150 MB"
	Pass bool
}

// Summary is one line on the verdicts and further checks, and whether every target was met.
func Summary(vs []Verdict, more ...Check) (string, bool) {
	checks := make([]Check, 0, len(vs)+len(more))
	for _, v := range vs {
		if v.Target.Max == 0 {
			continue
		}
		op := "<="
		if !v.Pass {
			op = ">"
		}
		checks = append(checks, Check{Pass: v.Pass,
			What: fmt.Sprintf("%s %s %s %.2fx %s %.1fx", v.Transport, v.Scenario.Name, v.Target.Metric, v.Ratio, op, v.Target.Max)})
	}
	checks = append(checks, more...)
	var missed []string
	for _, c := range checks {
		if !c.Pass {
			missed = append(missed, c.What)
		}
	}
	switch {
	case len(checks) == 0:
		return "bench: no target applies to what was run", true
	case len(missed) == 0:
		return fmt.Sprintf("bench: PASS: %d of %d targets met", len(checks), len(checks)), true
	}
	return fmt.Sprintf("bench: FAIL: %d of %d targets missed: %s", len(missed), len(checks), strings.Join(missed, "; ")), false
}

// WriteResults prints one line per measurement.
func WriteResults(w io.Writer, ms []Measurement) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "transport\tscenario\tserver\trequests\trps\tp50\tp90\tp99\tmax\tserver CPU/check\tclient CPU/check\tother load\terrors\tdenied\t")
	for _, m := range ms {
		r := m.Result
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f%%\t%d\t%d\t\n", m.Transport, m.Scenario.Name, m.Server,
			r.Requests, r.RPS(), ms3(r.Latency.Quantile(0.5)), ms3(r.Latency.Quantile(0.9)), ms3(r.Latency.Quantile(0.99)), ms3(r.Latency.Max()),
			us1(r.ServerCPUPerRequest()), us1(r.ClientCPUPerRequest()), 100*r.OtherLoad(), r.Errors, r.Denied)
	}
	return tw.Flush()
}

// WriteVerdicts prints the ratios and their targets, and under them the problems found.
func WriteVerdicts(w io.Writer, vs []Verdict) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "transport\tscenario\tratio certbind/no-op\tvalue\ttarget\tresult")
	problems := map[string]string{}
	var order []string
	for _, v := range vs {
		mark := "PASS"
		if !v.Pass {
			mark = "FAIL"
		}
		key := v.Transport + " " + v.Scenario.Name
		p := v.Problem()
		switch n := v.Noise(); {
		case p != "":
			mark += " (invalid run)"
		case n != "":
			mark += " (noisy)"
			p = n
		}
		if p != "" {
			if _, seen := problems[key]; !seen {
				order = append(order, key)
			}
			problems[key] = p
		}
		if v.Target.Max == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fx\tnone\t%s\n", v.Transport, v.Scenario.Name, v.Target.Metric, v.Ratio, strings.Replace(mark, "PASS", "reported", 1))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fx\t<= %.1fx\t%s\n", v.Transport, v.Scenario.Name, v.Target.Metric, v.Ratio, v.Target.Max, mark)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, k := range order {
		fmt.Fprintf(w, "  %s: %s\n", k, problems[k])
	}
	return nil
}

func ms3(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }
func us1(d time.Duration) string { return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond)) }

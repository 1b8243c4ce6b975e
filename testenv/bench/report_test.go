package bench

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

func result(cpuPerCheck, p99 time.Duration) *Result {
	r := &Result{Requests: 1000, Elapsed: time.Second, ServerCPU: cpuPerCheck * 1000}
	for range 1000 {
		r.Latency.Record(p99)
	}
	return r
}

func TestJudge(t *testing.T) {
	warm, _ := ScenarioNamed("warm")
	cold, _ := ScenarioNamed("cold")
	coldCA, _ := ScenarioNamed("cold-client-auth")
	base := result(60*time.Microsecond, 10*time.Millisecond)
	denied := result(70*time.Microsecond, 10*time.Millisecond)
	denied.Denied, denied.FirstDeny = 3, "gRPC status 16: token_unbound"
	cs := []Comparison{
		{Transport: "grpc", Scenario: warm, Base: base, Subject: result(72*time.Microsecond, 16*time.Millisecond)},
		{Transport: "grpc", Scenario: cold, Base: base, Subject: result(210*time.Microsecond, 50*time.Millisecond)},
		{Transport: "grpc", Scenario: coldCA, Base: base, Subject: result(210*time.Microsecond, 50*time.Millisecond)},
		{Transport: "http", Scenario: warm, Base: base, Subject: denied},
		{Transport: "http", Scenario: cold, Base: base, Subject: result(300*time.Microsecond, 50*time.Millisecond)},
	}
	cs[1].Subject.OtherCPU = time.Duration(runtime.NumCPU()) * 500 * time.Millisecond // half the machine
	vs := Judge(cs, Targets)
	type row struct {
		tr     string
		metric Metric
		ratio  float64
		pass   bool
	}
	want := []row{
		{"grpc", MetricCPU, 1.2, true},
		{"grpc", MetricP99, 1.6, false},
		{"grpc", MetricCPU, 210.0 / 60, true},  // cold: <= 3.6
		{"grpc", MetricCPU, 210.0 / 60, false}, // cold-client-auth: <= 2.8
		{"http", MetricCPU, 70.0 / 60, false},  // within target, but certbind denied
		{"http", MetricP99, 1, false},
		{"http", MetricCPU, 5, true}, // cold over HTTP: reported, no target
	}
	if len(vs) != len(want) {
		t.Fatalf("%d verdicts, want %d", len(vs), len(want))
	}
	for i, w := range want {
		v := vs[i]
		if v.Transport != w.tr || v.Target.Metric != w.metric || v.Pass != w.pass || v.Ratio < w.ratio*0.99 || v.Ratio > w.ratio*1.01 {
			t.Errorf("verdict %d: %s %s %.3f pass=%v; want %+v", i, v.Transport, v.Target.Metric, v.Ratio, v.Pass, w)
		}
	}
	line, ok := Summary(vs, Check{What: "memory peak RSS 100.0 MB <= 150 MB", Pass: true})
	if ok || !strings.HasPrefix(line, "bench: FAIL: 4 of 7 targets missed: grpc warm p99 1.6") || strings.Contains(line, "http cold") {
		t.Errorf("summary %q, %v", line, ok)
	}
	if line, ok := Summary(vs[:1]); !ok || line != "bench: PASS: 1 of 1 targets met" {
		t.Errorf("summary %q, %v", line, ok)
	}
	var out strings.Builder
	if err := WriteVerdicts(&out, vs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "http warm: subject denied 3 (first: gRPC status 16: token_unbound)") ||
		!strings.Contains(out.String(), "PASS (noisy)") || !strings.Contains(out.String(), "grpc cold: other processes used the CPUs (subject run") ||
		!strings.Contains(out.String(), "5.00x  none     reported") {
		t.Errorf("the problem is not reported:\n%s", out.String())
	}
}

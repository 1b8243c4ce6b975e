package helm

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/certbind/certbind/extauthz/metrics"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/pki"
)

// targetLabels are the labels Prometheus adds to every series it scrapes through the
// ServiceMonitor (job, instance and the Kubernetes service discovery's namespace, pod,
// service, container, endpoint): expressions may select and group by them although certbind
// does not export them.
var targetLabels = map[string]bool{
	"job": true, "instance": true, "namespace": true, "pod": true, "service": true, "container": true, "endpoint": true,
}

// series is one series name certbind exports (a histogram family is three: _bucket, _sum,
// _count), with the label values its collectors produced.
type series struct {
	family string
	labels map[string]map[string]bool // label name -> values seen
}

// exportedSeries exercises a real extauthz/metrics registry the way certbind does and gathers
// it, so the names, label names and label values the dashboards and alerts may use are those the
// code produces. The label values computed inside extauthz/metrics (result: allow/deny,
// success/failure, ok/error) are its own; fetch kinds, caches and cache events are the values
// policy.Observer documents and policy/ and extauthz/cache.go pass.
func exportedSeries(t *testing.T) map[string]*series {
	t.Helper()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	root := pki.NewRoot("Metrics Root", pki.Validity(now.Add(-time.Hour), now.Add(90*24*time.Hour)))
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ca.pem"), root.PEM())
	writeFile(t, filepath.Join(dir, "ca.crl"), root.CRLPEM(now.Add(-time.Hour), now.Add(48*time.Hour)))
	cfg, err := policy.ParseConfig([]byte("trust_anchors: [ca.pem]\ncrl_files: [ca.crl]\n"), dir, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.NewWithClock(func() time.Time { return now })
	m.ObserveReload(cfg, nil, now)
	m.ObserveReload(nil, errors.New("broken"), now)
	leaf := root.Leaf("c", pki.ClientAuth(), pki.Validity(now.Add(-time.Hour), now.Add(20*24*time.Hour)))
	presented, err := policy.ParsePresented(leaf.DER(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []policy.Mode{policy.ModeClientAuth, policy.ModeBoundToken, policy.ModeIdentity} {
		m.ObserveDecision(policy.Decision{Allow: true, Reason: policy.ReasonOK, Mode: mode, Certificate: presented}, time.Millisecond, now)
		m.ObserveDecision(policy.Decision{Reason: policy.ReasonCertificateExpired, Mode: mode}, time.Millisecond, now)
	}
	m.ObserveDecision(policy.Decision{Reason: policy.ReasonNoPolicy}, time.Millisecond, now)
	for _, kind := range []string{"jwks", "introspection", "ocsp", "crl"} {
		m.ObserveFetch(kind, nil)
		m.ObserveFetch(kind, errors.New("down"))
	}
	for _, cache := range []string{"certificates", "chains", "tokens"} {
		for _, event := range []string{"hit", "miss", "eviction"} {
			m.ObserveCache(cache, event)
		}
	}

	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*series{}
	add := func(name, family string, lps []*dto.LabelPair, extra ...string) {
		s := out[name]
		if s == nil {
			s = &series{family: family, labels: map[string]map[string]bool{}}
			out[name] = s
		}
		for _, lp := range lps {
			if s.labels[lp.GetName()] == nil {
				s.labels[lp.GetName()] = map[string]bool{}
			}
			s.labels[lp.GetName()][lp.GetValue()] = true
		}
		for _, l := range extra {
			if s.labels[l] == nil {
				s.labels[l] = map[string]bool{}
			}
		}
	}
	for _, f := range families {
		name := f.GetName()
		for _, mt := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				add(name+"_bucket", name, mt.GetLabel(), "le")
				add(name+"_sum", name, mt.GetLabel())
				add(name+"_count", name, mt.GetLabel())
			case dto.MetricType_SUMMARY:
				add(name, name, mt.GetLabel(), "quantile")
				add(name+"_sum", name, mt.GetLabel())
				add(name+"_count", name, mt.GetLabel())
			default:
				add(name, name, mt.GetLabel())
			}
		}
	}
	// Every certbind metric of the README's table is there, so the registry was exercised
	// enough for the checks to mean something.
	for _, name := range readmeMetrics(t) {
		if _, ok := out[name]; !ok {
			if _, ok := out[name+"_bucket"]; !ok {
				t.Fatalf("%s (README metrics table): not gathered from extauthz/metrics", name)
			}
		}
	}
	return out
}

// readmeMetrics lists the metric names of the README's metrics table.
func readmeMetrics(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile("(?m)^\\s*\\| `(certbind_[a-z_]+)`").FindAllSubmatch(readme, -1) {
		names = append(names, string(m[1]))
	}
	if len(names) < 10 {
		t.Fatalf("README metrics table: %d certbind_ names found, want the table's 10", len(names))
	}
	return names
}

var promql = parser.NewParser(parser.Options{})

// exprInfo is what an expression refers to.
type exprInfo struct {
	ast      parser.Expr
	metrics  []string        // series names selected, in order
	grouping map[string]bool // labels of by (...) and on/ignoring/group_left(...) clauses
}

// checkExpr parses a PromQL expression with Prometheus' parser and checks that it selects only
// series certbind exports, by labels they carry (or target labels), with label values its
// collectors produce.
func checkExpr(expr string, exported map[string]*series) (*exprInfo, error) {
	ast, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	info := &exprInfo{ast: ast, grouping: map[string]bool{}}
	var errs []error
	available := map[string]bool{}
	addAll := func(set map[string]bool, names ...string) {
		for _, n := range names {
			set[n] = true
		}
	}
	addAll(available, "__name__")
	for l := range targetLabels {
		available[l] = true
	}
	parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			name := n.Name
			for _, m := range n.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
			s, ok := exported[name]
			if !ok {
				errs = append(errs, fmt.Errorf("%q: certbind exports no series %q", n.String(), name))
				return nil
			}
			info.metrics = append(info.metrics, name)
			for l := range s.labels {
				available[l] = true
			}
			for _, m := range n.LabelMatchers {
				if m.Name == labels.MetricName || targetLabels[m.Name] {
					continue
				}
				values, ok := s.labels[m.Name]
				if !ok {
					errs = append(errs, fmt.Errorf("%s: %s has no label %q", m, name, m.Name))
					continue
				}
				if m.Type != labels.MatchEqual && m.Type != labels.MatchRegexp || m.Name == "le" {
					continue
				}
				if !slices.ContainsFunc(sortedKeys(values), m.Matches) {
					errs = append(errs, fmt.Errorf("%s: %s{%s} takes the values %v, none of which matches", m, name, m.Name, sortedKeys(values)))
				}
			}
		case *parser.AggregateExpr:
			if n.Without {
				errs = append(errs, fmt.Errorf("%s: without(...) hides which labels remain: use by(...)", n.Op))
			}
			addAll(info.grouping, n.Grouping...)
		case *parser.BinaryExpr:
			if n.VectorMatching != nil {
				addAll(info.grouping, n.VectorMatching.MatchingLabels...)
				addAll(info.grouping, n.VectorMatching.Include...)
				if err := checkMatching(n); err != nil {
					errs = append(errs, err)
				}
			}
		}
		return nil
	})
	for l := range info.grouping {
		if !available[l] {
			errs = append(errs, fmt.Errorf("grouping by %q: no selected series has that label", l))
		}
	}
	if len(info.metrics) == 0 {
		errs = append(errs, errors.New("selects no series"))
	}
	return info, errors.Join(errs...)
}

// outputLabels returns the labels an expression's result carries, when the expression says
// (an aggregation by (...), or what keeps one's labels); ok is false when it depends on the
// series.
func outputLabels(e parser.Expr) (set map[string]bool, ok bool) {
	switch n := e.(type) {
	case *parser.ParenExpr:
		return outputLabels(n.Expr)
	case *parser.AggregateExpr:
		if n.Without || n.Op == parser.TOPK || n.Op == parser.BOTTOMK || n.Op == parser.COUNT_VALUES {
			return nil, false
		}
		set = map[string]bool{}
		for _, l := range n.Grouping {
			set[l] = true
		}
		return set, true
	case *parser.Call:
		if n.Func.Name == "histogram_quantile" {
			set, ok = outputLabels(n.Args[1])
			if ok {
				delete(set, "le")
			}
			return set, ok
		}
	case *parser.BinaryExpr:
		lv, rv := n.LHS.Type() == parser.ValueTypeVector, n.RHS.Type() == parser.ValueTypeVector
		switch {
		case lv && !rv:
			return outputLabels(n.LHS)
		case rv && !lv:
			return outputLabels(n.RHS)
		case n.Op != parser.LOR && n.VectorMatching != nil && n.VectorMatching.Card != parser.CardOneToMany:
			return outputLabels(n.LHS)
		}
	}
	return nil, false
}

// checkMatching refuses a binary operation between two vectors, matched on all their labels,
// whose sides carry different labels: no series would ever match, and an alert built on it would
// never fire.
func checkMatching(n *parser.BinaryExpr) error {
	vm := n.VectorMatching
	if n.LHS.Type() != parser.ValueTypeVector || n.RHS.Type() != parser.ValueTypeVector || vm.On || len(vm.MatchingLabels) > 0 || n.Op == parser.LOR {
		return nil
	}
	l, lok := outputLabels(n.LHS)
	r, rok := outputLabels(n.RHS)
	if lok && rok && !maps.Equal(l, r) {
		return fmt.Errorf("%s: its sides carry labels %v and %v, so no series ever matches", n.Op, sortedKeys(l), sortedKeys(r))
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The checker must be able to fail: each of these is a mistake it has to catch.
func TestCheckExprRejects(t *testing.T) {
	exported := exportedSeries(t)
	for _, tc := range []struct{ expr, want string }{
		{`certbind_decisions_total{result="deny"`, "parse"},
		{`rate(certbind_decision_total[5m])`, `no series "certbind_decision_total"`},
		{`certbind_decision_duration_seconds{mode="identity"}`, `no series "certbind_decision_duration_seconds"`},
		{`certbind_fetches_total{result="success"}`, `none of which matches`},
		{`certbind_fetches_total{result!="ok", kind="oidc"}`, `none of which matches`},
		{`certbind_config_reloads_total{outcome="failure"}`, `no label "outcome"`},
		{`sum by (reasn) (certbind_decisions_total)`, `grouping by "reasn"`},
		{`sum without (reason) (certbind_decisions_total)`, "without"},
		{`up{job="certbind"}`, `no series "up"`},
		{`vector(1)`, "selects no series"},
		{`sum by (job) (rate(certbind_decisions_total{result="deny"}[5m])) / sum by (namespace) (rate(certbind_decisions_total[5m]))`, "no series ever matches"},
		{`sum by (namespace, job) (rate(certbind_decisions_total[5m])) > 0.5 and sum(rate(certbind_decisions_total[5m])) > 1`, "no series ever matches"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			if _, err := checkExpr(tc.expr, exported); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// And accept what certbind exports.
	for _, expr := range []string{
		`sum by (namespace, job, reason) (rate(certbind_decisions_total{result="deny", mode=~"client_auth|none"}[5m]))`,
		`histogram_quantile(0.99, sum by (le, mode) (rate(certbind_decision_duration_seconds_bucket[5m])))`,
		`certbind_fetches_total{kind="ocsp", result="error"}`,
	} {
		if _, err := checkExpr(expr, exported); err != nil {
			t.Errorf("%s: %v", expr, err)
		}
	}
}

// unparen strips parentheses.
func unparen(e parser.Expr) parser.Expr {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// comparisons returns the comparisons of an expression whose right-hand side is a number.
func comparisons(ast parser.Expr, op parser.ItemType) (lhs []parser.Expr, rhs []float64) {
	parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
		if b, ok := node.(*parser.BinaryExpr); ok && b.Op == op {
			if n, ok := unparen(b.RHS).(*parser.NumberLiteral); ok {
				lhs, rhs = append(lhs, b.LHS), append(rhs, n.Val)
			}
		}
		return nil
	})
	return lhs, rhs
}

// selectorUse is a vector selector with the range it is read over (0 for an instant selector)
// and the function applied to that range.
type selectorUse struct {
	vs   *parser.VectorSelector
	rng  time.Duration
	call string
}

// selectors returns the vector selectors of an expression.
func selectors(ast parser.Node) []selectorUse {
	var out []selectorUse
	parser.Inspect(ast, func(node parser.Node, path []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		u := selectorUse{vs: vs}
		if len(path) > 0 {
			if ms, ok := path[len(path)-1].(*parser.MatrixSelector); ok {
				u.rng = ms.Range
				for i := len(path) - 2; i >= 0; i-- {
					if c, ok := path[i].(*parser.Call); ok {
						u.call = c.Func.Name
						break
					}
				}
			}
		}
		out = append(out, u)
		return nil
	})
	return out
}

// matcherValue is the value a selector's matcher of the label compares with ("" without one).
func matcherValue(vs *parser.VectorSelector, name string) string {
	if m := matcher(vs, name); m != nil {
		return m.Value
	}
	return ""
}

func matcher(vs *parser.VectorSelector, name string) *labels.Matcher {
	for _, m := range vs.LabelMatchers {
		if m.Name == name {
			return m
		}
	}
	return nil
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := model.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return time.Duration(d)
}

// labelRefs lists the $labels.x an alert's annotations use.
var labelRefs = regexp.MustCompile(`\$labels\.([A-Za-z_][A-Za-z0-9_]*)`)

func TestPrometheusRule(t *testing.T) {
	exported := exportedSeries(t)
	for _, tc := range []struct {
		name      string
		vals      map[string]any
		job, ns   string
		alertTeam string
		// thresholds and windows
		anchorDays, crlDays, denyRatio, minRate float64
		reloadWindow, denyWindow, fetchWindow   string
	}{
		{"default values, rule enabled", mergeValues(t, nil, "prometheusRule:\n  enabled: true\nserviceMonitor:\n  enabled: true\n"),
			"certbind", releaseNamespace, "", 30, 1, 0.5, 0.1, "15m", "5m", "15m"},
		{"every optional object on", readValues(t, allOnValues),
			"certbind-edge", "auth", "auth", 45, 2, 0.25, 1, "30m", "10m", "30m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := render(t, tc.vals)
			pr := only[*monitoringv1.PrometheusRule](t, all)
			svc := only[*corev1.Service](t, all)
			sm := only[*monitoringv1.ServiceMonitor](t, all)
			// The default selector's job is the job the ServiceMonitor gives the series: the
			// Service name, as no jobLabel is set.
			if sm.Spec.JobLabel != "" || (tc.job != svc.Name) {
				t.Errorf("job %q, Service %q, ServiceMonitor jobLabel %q: the rules would select no series", tc.job, svc.Name, sm.Spec.JobLabel)
			}

			alerts := map[string]*exprInfo{}
			for _, g := range pr.Spec.Groups {
				for _, r := range g.Rules {
					if r.Alert == "" || r.Record != "" {
						t.Errorf("rule %+v: only alerts expected", r)
						continue
					}
					if alerts[r.Alert] != nil {
						t.Errorf("alert %s twice", r.Alert)
					}
					if r.Expr.Type != intstr.String {
						t.Errorf("%s: expr is not a string", r.Alert)
						continue
					}
					info, err := checkExpr(r.Expr.StrVal, exported)
					if err != nil {
						t.Errorf("%s: %s\n%v", r.Alert, r.Expr.StrVal, err)
						continue
					}
					alerts[r.Alert] = info
					// Scoped to this release's series.
					for _, u := range selectors(info.ast) {
						for l, want := range map[string]string{"job": tc.job, "namespace": tc.ns} {
							if m := matcher(u.vs, l); m == nil || m.Type != labels.MatchEqual || m.Value != want {
								t.Errorf("%s: %s: want %s=%q", r.Alert, u.vs, l, want)
							}
						}
					}
					if r.For != nil {
						mustDuration(t, string(*r.For))
					}
					if sev := r.Labels["severity"]; sev != "warning" && sev != "critical" {
						t.Errorf("%s: severity %q", r.Alert, sev)
					}
					if tc.alertTeam != "" && r.Labels["team"] != tc.alertTeam {
						t.Errorf("%s: labels %v, want prometheusRule.alertLabels", r.Alert, r.Labels)
					}
					if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
						t.Errorf("%s: summary and description wanted", r.Alert)
					}
					for _, m := range labelRefs.FindAllStringSubmatch(r.Annotations["description"], -1) {
						if !info.grouping[m[1]] {
							t.Errorf("%s: description uses $labels.%s, which the expression does not keep (by %v)", r.Alert, m[1], sortedKeys(info.grouping))
						}
					}
				}
			}

			// The alerts the README asks for, with the thresholds and windows of the values.
			threshold := func(alert string, op parser.ItemType, metric string, want float64) {
				t.Helper()
				info := alerts[alert]
				if info == nil {
					t.Errorf("no alert %s", alert)
					return
				}
				lhs, rhs := comparisons(info.ast, op)
				for i := range lhs {
					if rhs[i] != want {
						continue
					}
					for _, u := range selectors(lhs[i]) {
						if u.vs.Name == metric {
							return
						}
					}
				}
				t.Errorf("%s: no %s %s %v in %s", alert, metric, op, want, info.ast)
			}
			threshold("CertbindTrustAnchorExpiring", parser.LSS, "certbind_trust_anchor_expiry_days", tc.anchorDays)
			threshold("CertbindCRLStale", parser.LSS, "certbind_crl_next_update_days", tc.crlDays)
			threshold("CertbindConfigReloadFailed", parser.GTR, "certbind_config_reloads_total", 0)
			threshold("CertbindDenyRatioHigh", parser.GTR, "certbind_decisions_total", tc.denyRatio)
			threshold("CertbindDenyRatioHigh", parser.GTE, "certbind_decisions_total", tc.minRate)
			threshold("CertbindFetchesFailing", parser.GTR, "certbind_fetches_total", 0)

			window := func(alert, metric, call, result, wantRange string) {
				t.Helper()
				info := alerts[alert]
				if info == nil {
					return
				}
				found := false
				for _, u := range selectors(info.ast) {
					if u.vs.Name != metric {
						continue
					}
					if u.call != call || u.rng != mustDuration(t, wantRange) {
						t.Errorf("%s: %s read with %s over %v, want %s over %s", alert, u.vs, u.call, u.rng, call, wantRange)
					}
					if m := matcher(u.vs, "result"); m != nil && m.Value == result && m.Type == labels.MatchEqual {
						found = true
					}
				}
				if !found {
					t.Errorf("%s: no %s{result=%q}", alert, metric, result)
				}
			}
			window("CertbindConfigReloadFailed", "certbind_config_reloads_total", "increase", "failure", tc.reloadWindow)
			window("CertbindDenyRatioHigh", "certbind_decisions_total", "rate", "deny", tc.denyWindow)
			window("CertbindFetchesFailing", "certbind_fetches_total", "increase", "error", tc.fetchWindow)

			// The deny ratio divides denies by all decisions of the same window.
			if info := alerts["CertbindDenyRatioHigh"]; info != nil {
				var divisions int
				parser.Inspect(info.ast, func(node parser.Node, _ []parser.Node) error {
					b, ok := node.(*parser.BinaryExpr)
					if !ok || b.Op != parser.DIV {
						return nil
					}
					num, den := selectors(b.LHS), selectors(b.RHS)
					if len(num) == 1 && len(den) == 1 && matcherValue(num[0].vs, "result") == "deny" && matcher(den[0].vs, "result") == nil &&
						num[0].rng == den[0].rng {
						divisions++
					}
					return nil
				})
				if divisions != 1 {
					t.Errorf("CertbindDenyRatioHigh: %s: want denies / all decisions over one window", info.ast)
				}
			}
			if len(alerts) != 5 {
				t.Errorf("alerts %v: want the five of the README", sortedKeys(func() map[string]bool {
					m := map[string]bool{}
					for k := range alerts {
						m[k] = true
					}
					return m
				}()))
			}
		})
	}
}

// grafanaVar matches a Grafana variable in a query: $name or ${name} (with an optional :format).
var grafanaVar = regexp.MustCompile(`\$(?:\{([A-Za-z0-9_]+)(?::[a-z]+)?\}|([A-Za-z0-9_]+))`)

// grafanaBuiltins are Grafana's own interval variables, with a value for parsing.
var grafanaBuiltins = map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "6h"}

// substitute replaces Grafana variables the way Grafana does before a query reaches Prometheus;
// a variable that is neither built in nor defined by the dashboard is an error.
func substitute(query string, vars map[string]string) (string, error) {
	var errs []error
	out := grafanaVar.ReplaceAllStringFunc(query, func(m string) string {
		sm := grafanaVar.FindStringSubmatch(m)
		name := sm[1] + sm[2]
		if v, ok := grafanaBuiltins[name]; ok {
			return v
		}
		if v, ok := vars[name]; ok {
			return v
		}
		errs = append(errs, fmt.Errorf("variable $%s: not defined by the dashboard", name))
		return m
	})
	return out, errors.Join(errs...)
}

// dashboard is the part of Grafana's dashboard JSON the test reads.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource map[string]any `json:"datasource"`
	Panels     []panel        `json:"panels"` // a row's
	GridPos    *struct {
		W, H int
	} `json:"gridPos"`
	Targets []struct {
		RefID        string `json:"refId"`
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
}

// legendLabels matches {{label}} in a legend format.
var legendLabels = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

func TestGrafanaDashboard(t *testing.T) {
	exported := exportedSeries(t)
	vals := mergeValues(t, nil, "grafanaDashboard:\n  enabled: true\n")
	all := render(t, vals)
	var cm *corev1.ConfigMap
	for _, c := range objects[*corev1.ConfigMap](all) {
		if strings.HasSuffix(c.Name, "-dashboard") {
			cm = c
		}
	}
	if cm == nil {
		t.Fatal("no dashboard ConfigMap")
	}
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("labels %v: Grafana's sidecar loads ConfigMaps labelled grafana_dashboard: \"1\"", cm.Labels)
	}
	if len(cm.Data) != 1 || cm.Data["certbind.json"] == "" {
		t.Fatalf("data keys %v, want certbind.json", sortedKeys(func() map[string]bool {
			m := map[string]bool{}
			for k := range cm.Data {
				m[k] = true
			}
			return m
		}()))
	}
	// Only the fields the test reads: a dashboard has many more, which Grafana validates.
	var d dashboard
	if err := json.Unmarshal([]byte(cm.Data["certbind.json"]), &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q title %q", d.UID, d.Title)
	}

	// Variables: a Prometheus data source, and query variables whose label_values(...) reads a
	// certbind series.
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			var q string
			if err := json.Unmarshal(v.Query, &q); err != nil || q != "prometheus" {
				t.Errorf("variable %s: query %s, want prometheus", v.Name, v.Query)
			}
			vars[v.Name] = "unused"
		case "query":
			vars[v.Name] = map[string]string{"namespace": releaseNamespace, "job": releaseName}[v.Name]
			if vars[v.Name] == "" {
				t.Errorf("variable %s: no test value; add one", v.Name)
			}
		default:
			t.Errorf("variable %s: type %s", v.Name, v.Type)
		}
	}
	lv := regexp.MustCompile(`^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
			continue
		}
		m := lv.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: query %q, want label_values(selector, label)", v.Name, q.Query)
			continue
		}
		sel, err := substitute(m[1], vars)
		if err == nil {
			_, err = checkExpr(sel, exported)
		}
		if err != nil {
			t.Errorf("variable %s: %s: %v", v.Name, m[1], err)
		}
		if !targetLabels[m[2]] {
			t.Errorf("variable %s: label_values of %q, not a target label", v.Name, m[2])
		}
	}

	// Panels: every query parses and reads certbind's series by their labels.
	var exprs []*exprInfo
	var queries []string
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel %q: id %d twice", p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
				t.Errorf("panel %q: no gridPos", p.Title)
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if p.Datasource["uid"] != "${datasource}" {
				t.Errorf("panel %q: datasource %v, want the dashboard's ${datasource}", p.Title, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q: no targets", p.Title)
			}
			for _, tg := range p.Targets {
				q, err := substitute(tg.Expr, vars)
				var info *exprInfo
				if err == nil {
					info, err = checkExpr(q, exported)
				}
				if err != nil {
					t.Errorf("panel %q target %s: %s\n%v", p.Title, tg.RefID, tg.Expr, err)
					continue
				}
				exprs = append(exprs, info)
				queries = append(queries, q)
				// The legend names labels the query keeps.
				for _, m := range legendLabels.FindAllStringSubmatch(tg.LegendFormat, -1) {
					if !info.grouping[m[1]] {
						t.Errorf("panel %q target %s: legend {{%s}}: the query keeps only %v", p.Title, tg.RefID, m[1], sortedKeys(info.grouping))
					}
				}
				// Scoped to the selected namespace and job.
				for _, u := range selectors(info.ast) {
					for l, want := range map[string]string{"namespace": releaseNamespace, "job": releaseName} {
						if m := matcher(u.vs, l); m == nil || m.Value != want {
							t.Errorf("panel %q target %s: %s does not select $%s", p.Title, tg.RefID, u.vs, l)
						}
					}
				}
			}
		}
	}
	walk(d.Panels)

	// The panels the README's operators need.
	has := func(what string, ok func(*exprInfo) bool) {
		t.Helper()
		if !slices.ContainsFunc(exprs, ok) {
			t.Errorf("no panel for %s", what)
		}
	}
	reads := func(info *exprInfo, metric string) bool { return slices.Contains(info.metrics, metric) }
	has("decisions by reason (rate)", func(i *exprInfo) bool {
		for _, u := range selectors(i.ast) {
			if u.vs.Name == "certbind_decisions_total" && u.call == "rate" && i.grouping["reason"] {
				return true
			}
		}
		return false
	})
	for _, q := range []float64{0.5, 0.99} {
		has(fmt.Sprintf("decision latency p%v", q*100), func(i *exprInfo) bool {
			found := false
			parser.Inspect(i.ast, func(node parser.Node, _ []parser.Node) error {
				c, ok := node.(*parser.Call)
				if !ok || c.Func.Name != "histogram_quantile" {
					return nil
				}
				n, ok := unparen(c.Args[0]).(*parser.NumberLiteral)
				if ok && n.Val == q && slices.ContainsFunc(selectors(c.Args[1]), func(u selectorUse) bool {
					return u.vs.Name == "certbind_decision_duration_seconds_bucket" && u.call == "rate"
				}) {
					found = true
				}
				return nil
			})
			return found
		})
	}
	has("cache hit rate", func(i *exprInfo) bool {
		lhs, rhs := []selectorUse{}, []selectorUse{}
		parser.Inspect(i.ast, func(node parser.Node, _ []parser.Node) error {
			if b, ok := node.(*parser.BinaryExpr); ok && b.Op == parser.DIV {
				lhs, rhs = selectors(b.LHS), selectors(b.RHS)
			}
			return nil
		})
		return len(lhs) == 1 && len(rhs) == 1 && lhs[0].vs.Name == "certbind_cache_events_total" && rhs[0].vs.Name == "certbind_cache_events_total" &&
			matcherValue(lhs[0].vs, "event") == "hit" && matcher(rhs[0].vs, "event") != nil && matcher(rhs[0].vs, "event").Matches("miss") &&
			matcher(rhs[0].vs, "event").Matches("hit") && i.grouping["cache"]
	})
	has("trust anchor expiry", func(i *exprInfo) bool { return reads(i, "certbind_trust_anchor_expiry_days") })
	has("CRL next update", func(i *exprInfo) bool { return reads(i, "certbind_crl_next_update_days") })
	has("client certificate expiry histogram", func(i *exprInfo) bool {
		return reads(i, "certbind_client_certificate_expiry_days_bucket") && i.grouping["le"]
	})
	if len(queries) < 8 {
		t.Errorf("%d queries: the dashboard lost panels", len(queries))
	}

	// The chart ships the file as it is in the repository.
	file, err := os.ReadFile(filepath.Join(chartDir, "dashboards", "certbind.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(file)) != strings.TrimSpace(cm.Data["certbind.json"]) {
		t.Error("the ConfigMap's certbind.json differs from dashboards/certbind.json")
	}
}

func TestSubstituteRejectsUndefinedVariables(t *testing.T) {
	if _, err := substitute(`rate(certbind_decisions_total{job="$jobb"}[$__rate_interval])`, map[string]string{"job": "x"}); err == nil || !strings.Contains(err.Error(), "$jobb") {
		t.Errorf("error %v, want one naming $jobb", err)
	}
	got, err := substitute(`rate(x{namespace="${namespace}", job="$job"}[$__rate_interval])`, map[string]string{"job": "j", "namespace": "n"})
	if err != nil || got != `rate(x{namespace="n", job="j"}[5m])` {
		t.Errorf("got %q, %v", got, err)
	}
}

package helm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/certbind/certbind/deploy/deploytest"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/certbind/certbind/deploy/kubedoc"
)

const (
	chartDir    = "certbind"
	allOnValues = "testdata/all-on.yaml"
	// The release of the README's install command, in a namespace of its own.
	releaseName      = "certbind"
	releaseNamespace = "auth"
)

// kinds maps every apiVersion/kind the chart may render to a new typed object. The Prometheus
// Operator types (monitoring.coreos.com/v1) import nothing but k8s.io/api and apimachinery, at
// the versions this module already uses, so they are used as they are.
var kinds = kubedoc.Kinds{
	corev1.SchemeGroupVersion.WithKind("ServiceAccount"):                       func() any { return new(corev1.ServiceAccount) },
	corev1.SchemeGroupVersion.WithKind("ConfigMap"):                            func() any { return new(corev1.ConfigMap) },
	corev1.SchemeGroupVersion.WithKind("Secret"):                               func() any { return new(corev1.Secret) },
	corev1.SchemeGroupVersion.WithKind("Service"):                              func() any { return new(corev1.Service) },
	appsv1.SchemeGroupVersion.WithKind("Deployment"):                           func() any { return new(appsv1.Deployment) },
	policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"):                func() any { return new(policyv1.PodDisruptionBudget) },
	autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"):       func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"):                  func() any { return new(networkingv1.NetworkPolicy) },
	monitoringv1.SchemeGroupVersion.WithKind(monitoringv1.ServiceMonitorsKind): func() any { return new(monitoringv1.ServiceMonitor) },
	monitoringv1.SchemeGroupVersion.WithKind(monitoringv1.PrometheusRuleKind):  func() any { return new(monitoringv1.PrometheusRule) },
}

// manifest is one rendered YAML document, decoded.
type manifest struct {
	template string // e.g. templates/deployment.yaml
	index    int    // the document's position in the template's output
	gvk      schema.GroupVersionKind
	obj      any
}

func (m manifest) String() string { return fmt.Sprintf("%s#%d (%s)", m.template, m.index, m.gvk.Kind) }

// decodeDocument decodes one YAML document strictly: duplicate keys and unknown fields are
// errors at every level.
func decodeDocument(doc []byte) (any, schema.GroupVersionKind, error) {
	obj, gvk, _, err := kinds.Decode(doc)
	return obj, gvk, err
}

// kubeVersion is the Kubernetes version of this module's k8s.io/api (v0.37.2 is Kubernetes
// 1.37.2), read from go.mod: the API the tests decode into. Without it Helm's library assumes
// Kubernetes 1.20.
func kubeVersion(t *testing.T) *chartutil.KubeVersion {
	t.Helper()
	gomod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/api v0\.([0-9]+\.[0-9]+)\b`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod: no k8s.io/api v0.x requirement")
	}
	kv, err := chartutil.ParseKubeVersion("v1." + string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// readValues reads a values file as `helm install -f` does.
func readValues(t *testing.T, file string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return v.AsMap()
}

// renderTemplates renders the chart as `helm install certbind deploy/helm/certbind -n auth`
// with the given user values would: values coalesced with values.yaml, validated against
// values.schema.json, then the templates, strictly (a template reading a value that does not
// exist is an error).
func renderTemplates(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	c := loadChart(t)
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kubeVersion(t)
	top, err := chartutil.ToRenderValues(c, vals, chartutil.ReleaseOptions{
		Name: releaseName, Namespace: releaseNamespace, Revision: 1, IsInstall: true,
	}, caps)
	if err != nil {
		return nil, err
	}
	return engine.Engine{Strict: true}.Render(c, top)
}

// render renders and decodes every document, failing the test on any error.
func render(t *testing.T, vals map[string]any) []manifest {
	t.Helper()
	out, err := renderTemplates(t, vals)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := decodeRendered(out)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func decodeRendered(out map[string]string) ([]manifest, error) {
	names := slices.Sorted(maps.Keys(out))
	var all []manifest
	for _, name := range names {
		tmpl := strings.TrimPrefix(name, chartDir+"/")
		if !strings.HasSuffix(tmpl, ".yaml") {
			continue // NOTES.txt, _helpers.tpl
		}
		docs, err := kubedoc.Split([]byte(out[name]))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tmpl, err)
		}
		for i, doc := range docs {
			obj, gvk, err := decodeDocument(doc)
			if err != nil {
				return nil, fmt.Errorf("%s: document %d: %w\n%s", tmpl, i, err, doc)
			}
			all = append(all, manifest{template: tmpl, index: i, gvk: gvk, obj: obj})
		}
	}
	return all, nil
}

func objects[T any](all []manifest) []T {
	var out []T
	for _, m := range all {
		if o, ok := m.obj.(T); ok {
			out = append(out, o)
		}
	}
	return out
}

func only[T any](t *testing.T, all []manifest) T {
	t.Helper()
	objs := objects[T](all)
	if len(objs) != 1 {
		var zero T
		t.Fatalf("want exactly one %T, found %d", zero, len(objs))
	}
	return objs[0]
}

// lintMessages runs Helm's linter (`helm lint --strict` minus the CLI) with the given values.
func lintMessages(t *testing.T, vals map[string]any) []support.Message {
	t.Helper()
	l := lint.AllWithKubeVersionAndSchemaValidation(chartDir, vals, releaseNamespace, kubeVersion(t), false)
	return l.Messages
}

// The only lint message allowed: the chart has no icon (certbind has none to point at).
func unexplained(msgs []support.Message) []support.Message {
	var out []support.Message
	for _, m := range msgs {
		if m.Severity == support.InfoSev && m.Path == "Chart.yaml" && strings.Contains(m.Err.Error(), "icon is recommended") {
			continue
		}
		out = append(out, m)
	}
	return out
}

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
	}{
		{"default values", nil},
		{"every optional object on (" + allOnValues + ")", readValues(t, allOnValues)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range unexplained(lintMessages(t, tc.vals)) {
				t.Errorf("lint: %v", m)
			}
		})
	}
}

// The chart claims Kubernetes 1.30 and later (the preStop sleep action), which includes the API
// version the tests decode into.
func TestKubeVersionConstraint(t *testing.T) {
	c := loadChart(t)
	for v, want := range map[string]bool{"v1.29.9": false, "v1.30.0": true, kubeVersion(t).Version: true} {
		if got := chartutil.IsCompatibleRange(c.Metadata.KubeVersion, v); got != want {
			t.Errorf("kubeVersion %q with Kubernetes %s: compatible %v, want %v", c.Metadata.KubeVersion, v, got, want)
		}
	}
}

// mergeValues returns base with the YAML overrides coalesced over it, as a second -f would.
func mergeValues(t *testing.T, base map[string]any, overrides string) map[string]any {
	t.Helper()
	o, err := chartutil.ReadValues([]byte(overrides))
	if err != nil {
		t.Fatal(err)
	}
	return chartutil.CoalesceTables(o.AsMap(), deepCopy(t, base))
}

func deepCopy(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	if v == nil {
		return map[string]any{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// values.schema.json must turn a misspelt key, a wrong type or a value certbind would refuse
// into an error of `helm lint` and of `helm install` (the render), naming the key. A
// propertyNames failure (a map key the schema refuses) is named by the key alone: the validator
// Helm uses reports it at a wrong location (santhosh-tekuri/jsonschema#258).
func TestSchemaRejects(t *testing.T) {
	allOn := readValues(t, allOnValues)
	for _, tc := range []struct {
		name      string
		overrides string
		want      []string // all in the error
	}{
		{"misspelt top-level key", "replicaCont: 3\n", []string{"replicaCont"}},
		{"misspelt nested key", "serviceMonitor:\n  intervall: 30s\n", []string{"/serviceMonitor", "intervall"}},
		{"misspelt deep key", "prometheusRule:\n  rules:\n    denyRatio:\n      treshold: 0.2\n", []string{"/prometheusRule/rules/denyRatio", "treshold"}},
		{"misspelt key in a NetworkPolicy peer", "networkPolicy:\n  authzFrom:\n    - podselector: {matchLabels: {app: envoy}}\n", []string{"/networkPolicy/authzFrom/0", "podselector"}},
		{"misspelt key in resources", "resources:\n  request:\n    cpu: 1\n", []string{"/resources", "request"}},
		{"misspelt key in an environment variable", "env:\n  - name: OTEL_TRACES_EXPORTER\n    valu: otlp\n", []string{"/env/0", "valu"}},
		{"replicas as a string", "replicaCount: \"2\"\n", []string{"/replicaCount"}},
		{"no replicas", "replicaCount: 0\n", []string{"/replicaCount"}},
		{"unknown log format", "logFormat: yaml\n", []string{"/logFormat"}},
		{"a flag the chart sets itself", "extraArgs: [\"--config=/tmp/x.yaml\"]\n", []string{"/extraArgs/0"}},
		{"not a flag", "extraArgs: [\"wait-for-config\"]\n", []string{"/extraArgs/0"}},
		{"port out of range", "ports:\n  admin: 70000\n", []string{"/ports/admin"}},
		{"TLS Secret to create without a key", "tls:\n  secret:\n    create: true\n    cert: x\n    key: \"\"\n    clientCA: x\n", []string{"/tls/secret/key"}},
		{"PKI Secret to create without files", "pki:\n  secret:\n    create: true\n    files: null\n", []string{"/pki/secret/files"}},
		{"a PKI file name no Secret key can be", "pki:\n  secret:\n    create: true\n    files:\n      pki/ca.pem: x\n", []string{"pki/ca.pem"}},
		{"a pod label that would change the selector", "podLabels:\n  app.kubernetes.io/name: other\n", []string{"app.kubernetes.io/name"}},
		{"a Prometheus duration in words", "serviceMonitor:\n  interval: 30 seconds\n", []string{"/serviceMonitor/interval"}},
		{"deny ratio above 1", "prometheusRule:\n  rules:\n    denyRatio:\n      threshold: 50\n", []string{"/prometheusRule/rules/denyRatio/threshold"}},
		{"a selector with braces", "prometheusRule:\n  selector: '{job=\"x\"}'\n", []string{"/prometheusRule/selector"}},
		{"a PDB percentage without %", "podDisruptionBudget:\n  maxUnavailable: \"50\"\n", []string{"/podDisruptionBudget/maxUnavailable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, base := range []struct {
				name string
				vals map[string]any
			}{{"over the defaults", nil}, {"over " + allOnValues, allOn}} {
				vals := mergeValues(t, base.vals, tc.overrides)

				var lintErr []string
				for _, m := range lintMessages(t, vals) {
					if m.Severity == support.ErrorSev {
						lintErr = append(lintErr, m.Error())
					}
				}
				if got := strings.Join(lintErr, "\n"); !containsAll(got, tc.want) {
					t.Errorf("%s: lint errors %q, want one naming %q", base.name, got, tc.want)
				}

				_, err := renderTemplates(t, vals)
				if err == nil || !containsAll(err.Error(), tc.want) {
					t.Errorf("%s: render error %v, want one naming %q", base.name, err, tc.want)
				}
			}
		})
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// schemaNode resolves a schema node's $ref and allOf into the node that declares properties.
func resolve(t *testing.T, root, node map[string]any) map[string]any {
	t.Helper()
	if ref, ok := node["$ref"].(string); ok {
		name, ok := strings.CutPrefix(ref, "#/definitions/")
		if !ok {
			t.Fatalf("$ref %q: only #/definitions/ references expected", ref)
		}
		def, ok := root["definitions"].(map[string]any)[name].(map[string]any)
		if !ok {
			t.Fatalf("$ref %q: no such definition", ref)
		}
		return resolve(t, root, def)
	}
	if all, ok := node["allOf"].([]any); ok && node["properties"] == nil {
		for _, sub := range all {
			if r := resolve(t, root, sub.(map[string]any)); r["type"] != nil {
				return r
			}
		}
	}
	return node
}

// loadSchema reads values.schema.json.
func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	return root
}

// typed reports whether a schema node constrains its value's type.
func typed(node map[string]any) bool {
	for _, k := range []string{"type", "oneOf", "enum", "$ref"} {
		if _, ok := node[k]; ok {
			return true
		}
	}
	return false
}

// The schema covers every value: each key of values.yaml is declared; every object either
// declares its properties and refuses others, or is a map whose values are typed, or is one of
// the Kubernetes objects passed through as they are (listed here); every node has a type.
func TestSchemaCoversEveryValue(t *testing.T) {
	root := loadSchema(t)
	if root["$schema"] != "http://json-schema.org/draft-07/schema#" {
		t.Errorf("$schema %v, want draft-07", root["$schema"])
	}
	// Passed to Kubernetes as they are: the API server validates them.
	passThrough := map[string]bool{
		"global": true, "affinity": true, "tolerations[]": true, "topologySpreadConstraints[]": true, "env[].valueFrom": true,
	}
	seen := map[string]bool{}
	var walk func(path string, node map[string]any, value any)
	walk = func(path string, node map[string]any, value any) {
		node = resolve(t, root, node)
		if !typed(node) {
			t.Errorf("%s: no type", path)
		}
		switch node["type"] {
		case "object":
			props, _ := node["properties"].(map[string]any)
			if len(props) == 0 {
				if passThrough[path] {
					seen[path] = true
				} else if ap, ok := node["additionalProperties"].(map[string]any); !ok || !typed(ap) {
					t.Errorf("%s: an object without properties or typed values: declare them, or list it as passed through", path)
				}
				return
			}
			if node["additionalProperties"] != false {
				t.Errorf("%s: additionalProperties is not false: a misspelt key would pass", path)
			}
			vm, _ := value.(map[string]any)
			for k := range vm {
				if _, ok := props[k]; !ok {
					t.Errorf("values.yaml %s.%s: not in the schema", path, k)
				}
			}
			for k, p := range props {
				child := k
				if path != "" {
					child = path + "." + k
				}
				walk(child, p.(map[string]any), vm[k])
			}
		case "array":
			items, ok := node["items"].(map[string]any)
			if !ok {
				t.Errorf("%s: an array without items", path)
				return
			}
			var first any
			if l, _ := value.([]any); len(l) > 0 {
				first = l[0]
			}
			walk(path+"[]", items, first)
		}
	}
	walk("", root, readValues(t, filepath.Join(chartDir, "values.yaml")))
	for p := range passThrough {
		if !seen[p] {
			t.Errorf("passed through %s: the schema has no such free-form object; update this test", p)
		}
	}
}

// schemaLeaves lists the values the schema declares, as README rows name them: dotted paths down
// to a scalar, a list or a map without declared properties.
func schemaLeaves(t *testing.T) []string {
	t.Helper()
	root := loadSchema(t)
	var leaves []string
	var walk func(path string, node map[string]any)
	walk = func(path string, node map[string]any) {
		node = resolve(t, root, node)
		props, _ := node["properties"].(map[string]any)
		if node["type"] != "object" || len(props) == 0 {
			leaves = append(leaves, path)
			return
		}
		for k, p := range props {
			if path == "" && k == "global" {
				continue
			}
			child := k
			if path != "" {
				child = path + "." + k
			}
			walk(child, p.(map[string]any))
		}
	}
	walk("", root)
	sort.Strings(leaves)
	return leaves
}

// The values table of the chart's README lists every value the schema declares, and nothing
// else.
func TestReadmeListsEveryValue(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := bytes.Cut(readme, []byte("\n## Values\n"))
	if !ok {
		t.Fatal("README.md: no section ## Values")
	}
	section, _, _ = bytes.Cut(section, []byte("\n## "))
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z0-9_.]+)` \\|").FindAllSubmatch(section, -1) {
		documented[string(m[1])] = true
	}
	if len(documented) == 0 {
		t.Fatal("README.md: no values table rows (| `key` | ...)")
	}
	leaves := schemaLeaves(t)
	for _, p := range leaves {
		if !documented[p] {
			t.Errorf("README.md values table: %s missing", p)
		}
		delete(documented, p)
	}
	for p := range documented {
		t.Errorf("README.md values table: %s is not a value of the schema", p)
	}
}

// wantKinds is what a values set renders: template, kind and count.
func kindCounts(all []manifest) map[string]int {
	got := map[string]int{}
	for _, m := range all {
		got[m.template+" "+m.gvk.Kind]++
	}
	return got
}

func TestRenderDecodesStrictly(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		want map[string]int
	}{
		{"default values", nil, map[string]int{
			"templates/serviceaccount.yaml ServiceAccount":           1,
			"templates/configmap.yaml ConfigMap":                     1,
			"templates/deployment.yaml Deployment":                   1,
			"templates/service.yaml Service":                         1,
			"templates/poddisruptionbudget.yaml PodDisruptionBudget": 1,
		}},
		{"every optional object on", readValues(t, allOnValues), map[string]int{
			"templates/serviceaccount.yaml ServiceAccount":           1,
			"templates/configmap.yaml ConfigMap":                     1,
			"templates/secret-tls.yaml Secret":                       1,
			"templates/secret-pki.yaml Secret":                       1,
			"templates/deployment.yaml Deployment":                   1,
			"templates/service.yaml Service":                         1,
			"templates/poddisruptionbudget.yaml PodDisruptionBudget": 1,
			"templates/hpa.yaml HorizontalPodAutoscaler":             1,
			"templates/networkpolicy.yaml NetworkPolicy":             1,
			"templates/servicemonitor.yaml ServiceMonitor":           1,
			"templates/prometheusrule.yaml PrometheusRule":           1,
			"templates/dashboard-configmap.yaml ConfigMap":           1,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := render(t, tc.vals)
			got := kindCounts(all)
			if !maps.Equal(got, tc.want) {
				t.Errorf("rendered\n got %v\nwant %v", got, tc.want)
			}
			names := map[string]bool{}
			for _, m := range all {
				om := m.obj.(metav1.Object)
				key := m.gvk.Kind + "/" + om.GetName()
				if names[key] {
					t.Errorf("%v: %s rendered twice", m, key)
				}
				names[key] = true
				if errs := validation.IsDNS1123Subdomain(om.GetName()); len(errs) > 0 {
					t.Errorf("%v: name %q: %v", m, om.GetName(), errs)
				}
				if om.GetNamespace() == "" {
					t.Errorf("%v: no namespace", m)
				}
				for k, v := range om.GetLabels() {
					if errs := validation.IsQualifiedName(k); len(errs) > 0 {
						t.Errorf("%v: label key %q: %v", m, k, errs)
					}
					if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
						t.Errorf("%v: label %s value %q: %v", m, k, v, errs)
					}
				}
				for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
					if om.GetLabels()[k] == "" {
						t.Errorf("%v: label %s missing", m, k)
					}
				}
			}
		})
	}
}

// The decoder is only worth something if it fails: every rendered document, with an unknown
// field added at the top and deep inside, must not decode; nor a duplicate key.
func TestStrictDecoderRejectsMutatedCopies(t *testing.T) {
	out, err := renderTemplates(t, readValues(t, allOnValues))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeRendered(out); err != nil {
		t.Fatalf("the original does not decode: %v", err)
	}
	deep := map[string][]any{
		"Deployment": {"spec", "template", "spec", "containers", 0, "readynessProbe"},
		"Service":    {"spec", "ports", 0, "appprotocol"}, // case matters

		"ServiceAccount":          {"automountServiceAccountTokens"},
		"ConfigMap":               {"metadata", "labelz"},
		"Secret":                  {"metadata", "annotationz"},
		"PodDisruptionBudget":     {"spec", "selector", "matchLabelz"},
		"HorizontalPodAutoscaler": {"spec", "metrics", 0, "resource", "target", "averageUtilisation"},
		"NetworkPolicy":           {"spec", "ingress", 0, "from", 0, "podselector"},
		"ServiceMonitor":          {"spec", "endpoints", 0, "ScrapeTimeout"},
		"PrometheusRule":          {"spec", "groups", 0, "rules", 0, "expression"},
	}
	tested := map[string]bool{}
	for name, text := range out {
		docs, err := kubedoc.Split([]byte(text))
		if err != nil || !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for i, doc := range docs {
			js, err := yaml.YAMLToJSONStrict(doc)
			if err != nil {
				t.Fatal(err)
			}
			var tree map[string]any
			if err := json.Unmarshal(js, &tree); err != nil {
				t.Fatal(err)
			}
			kind, _ := tree["kind"].(string)
			tested[kind] = true

			top := deepCopy(t, tree)
			top["certbindUnknownField"] = true
			if _, _, err := decodeDocument(deploytest.MustJSON(t, top)); err == nil || !strings.Contains(err.Error(), "certbindUnknownField") {
				t.Errorf("%s#%d: unknown top-level field: error %v", name, i, err)
			}

			path, ok := deep[kind]
			if !ok {
				t.Errorf("%s#%d: kind %s has no deep mutation in this test", name, i, kind)
				continue
			}
			inner := deepCopy(t, tree)
			deploytest.SetPath(t, inner, true, path...)
			field := path[len(path)-1].(string)
			if _, _, err := decodeDocument(deploytest.MustJSON(t, inner)); err == nil || !strings.Contains(err.Error(), field) {
				t.Errorf("%s#%d: unknown field %v: error %v", name, i, path, err)
			}

			dup := bytes.Replace(doc, []byte("\nkind: "), []byte("\nkind: "+kind+"\nkind: "), 1)
			if _, _, err := decodeDocument(dup); err == nil || !strings.Contains(err.Error(), `"kind" already set`) {
				t.Errorf("%s#%d: duplicate key: error %v", name, i, err)
			}
		}
	}
	for kind := range deep {
		if !tested[kind] {
			t.Errorf("%s: not rendered with %s", kind, allOnValues)
		}
	}
}

package kubernetes

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/certbind/certbind/deploy/deploytest"

	jose "github.com/go-jose/go-jose/v4"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingapi "istio.io/api/networking/v1alpha3"
	securityapi "istio.io/api/security/v1beta1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/certbind/certbind/deploy/kubedoc"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/pki"
)

// notApplied are manifests that no kustomization may list, with the reason.
var notApplied = map[string]string{
	"istio/mesh-config.yaml": "a snippet to merge into the mesh config: applied, it would replace the installation's whole mesh config",
}

// kustomization mirrors the fields of kustomize's Kustomization (kustomize.config.k8s.io/v1beta1)
// that these manifests use. kustomize's own types are not a dependency; anything else in a
// kustomization.yaml fails the strict decode, so adding a field means adding it here.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

var kustomizeGroupVersion = schema.GroupVersion{Group: "kustomize.config.k8s.io", Version: "v1beta1"}

// kinds maps every apiVersion/kind the tree may hold to a new typed object.
var kinds = kubedoc.Kinds{
	corev1.SchemeGroupVersion.WithKind("Namespace"):               func() any { return new(corev1.Namespace) },
	corev1.SchemeGroupVersion.WithKind("ServiceAccount"):          func() any { return new(corev1.ServiceAccount) },
	corev1.SchemeGroupVersion.WithKind("ConfigMap"):               func() any { return new(corev1.ConfigMap) },
	corev1.SchemeGroupVersion.WithKind("Service"):                 func() any { return new(corev1.Service) },
	appsv1.SchemeGroupVersion.WithKind("Deployment"):              func() any { return new(appsv1.Deployment) },
	policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"):   func() any { return new(policyv1.PodDisruptionBudget) },
	securityv1.SchemeGroupVersion.WithKind("AuthorizationPolicy"): func() any { return new(securityv1.AuthorizationPolicy) },
	networkingv1.SchemeGroupVersion.WithKind("DestinationRule"):   func() any { return new(networkingv1.DestinationRule) },
	kustomizeGroupVersion.WithKind("Kustomization"):               func() any { return new(kustomization) },
}

// manifest is one decoded YAML document.
type manifest struct {
	file  string // slash-separated, relative to this directory
	index int    // the document's position in its file
	gvk   schema.GroupVersionKind
	obj   any
}

func (m manifest) String() string { return fmt.Sprintf("%s#%d (%s)", m.file, m.index, m.gvk.Kind) }

// decodeDocument decodes one YAML document strictly: duplicate keys and unknown fields are
// errors at every level, including inside Istio specs and the mesh config.
func decodeDocument(doc []byte) (any, schema.GroupVersionKind, error) {
	obj, gvk, js, err := kinds.Decode(doc)
	if err != nil {
		return nil, gvk, err
	}
	// Istio's generated UnmarshalJSON for specs accepts unknown fields (jsonpb with
	// AllowUnknownFields), so DisallowUnknownFields stops at the spec: decode it again with
	// protojson, which rejects them.
	if spec := istioSpec(obj); spec != nil {
		if err := strictSpec(js, spec); err != nil {
			return nil, gvk, err
		}
	}
	if cm, ok := obj.(*corev1.ConfigMap); ok && isMeshConfig(cm) {
		if _, err := meshConfig(cm); err != nil {
			return nil, gvk, err
		}
	}
	return obj, gvk, nil
}

func istioSpec(obj any) proto.Message {
	switch o := obj.(type) {
	case *securityv1.AuthorizationPolicy:
		return &o.Spec
	case *networkingv1.DestinationRule:
		return &o.Spec
	}
	return nil
}

// strictSpec decodes the object's spec with protojson into a fresh message and requires it to
// equal what the lenient decoder produced.
func strictSpec(js []byte, lenient proto.Message) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return err
	}
	raw, ok := top["spec"]
	if !ok {
		return errors.New("no spec")
	}
	strict := lenient.ProtoReflect().New().Interface()
	if err := protojson.Unmarshal(raw, strict); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	if !proto.Equal(strict, lenient) {
		return errors.New("spec: the strict and the lenient decode differ")
	}
	return nil
}

func isMeshConfig(cm *corev1.ConfigMap) bool {
	return cm.Namespace == "istio-system" && cm.Name == "istio"
}

// meshConfig decodes the mesh key of Istio's ConfigMap strictly into MeshConfig.
func meshConfig(cm *corev1.ConfigMap) (*meshv1alpha1.MeshConfig, error) {
	js, err := yaml.YAMLToJSONStrict([]byte(cm.Data["mesh"]))
	if err != nil {
		return nil, fmt.Errorf("data.mesh: %w", err)
	}
	mc := new(meshv1alpha1.MeshConfig)
	if err := protojson.Unmarshal(js, mc); err != nil {
		return nil, fmt.Errorf("data.mesh: %w", err)
	}
	return mc, nil
}

func decodeFile(file string) ([]manifest, error) {
	data, err := os.ReadFile(filepath.FromSlash(file))
	if err != nil {
		return nil, err
	}
	docs, err := kubedoc.Split(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no YAML document", file)
	}
	var out []manifest
	for i, doc := range docs {
		obj, gvk, err := decodeDocument(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		out = append(out, manifest{file: file, index: i, gvk: gvk, obj: obj})
	}
	return out, nil
}

// yamlFiles lists the YAML files of the tree, slash-separated and sorted.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != "." {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, filepath.ToSlash(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("no YAML files found")
	}
	return files
}

// loadAll decodes every YAML document of the tree, failing the test on the first error.
func loadAll(t *testing.T) []manifest {
	t.Helper()
	var all []manifest
	for _, f := range yamlFiles(t) {
		ms, err := decodeFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ms...)
	}
	return all
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

func certbindConfigMap(t *testing.T, all []manifest) *corev1.ConfigMap {
	t.Helper()
	for _, cm := range objects[*corev1.ConfigMap](all) {
		if cm.Name == "certbind-config" {
			return cm
		}
	}
	t.Fatal("no ConfigMap certbind-config")
	return nil
}

func istioMeshConfigMap(t *testing.T, all []manifest) *corev1.ConfigMap {
	t.Helper()
	for _, cm := range objects[*corev1.ConfigMap](all) {
		if isMeshConfig(cm) {
			return cm
		}
	}
	t.Fatal("no ConfigMap istio in istio-system")
	return nil
}

func TestEveryManifestDecodesStrictly(t *testing.T) {
	all := loadAll(t)
	got := map[string]int{}
	for _, m := range all {
		got[m.file+" "+m.gvk.Kind]++
		if om, ok := m.obj.(metav1.Object); ok {
			if errs := validation.IsDNS1123Subdomain(om.GetName()); len(errs) > 0 {
				t.Errorf("%v: name %q: %v", m, om.GetName(), errs)
			}
			for k, v := range om.GetLabels() {
				if errs := validation.IsQualifiedName(k); len(errs) > 0 {
					t.Errorf("%v: label key %q: %v", m, k, errs)
				}
				if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
					t.Errorf("%v: label %s value %q: %v", m, k, v, errs)
				}
			}
		}
	}
	want := map[string]int{
		"kustomization.yaml Kustomization":                   1,
		"namespace.yaml Namespace":                           1,
		"serviceaccount.yaml ServiceAccount":                 1,
		"configmap.yaml ConfigMap":                           1,
		"deployment.yaml Deployment":                         1,
		"poddisruptionbudget.yaml PodDisruptionBudget":       1,
		"service.yaml Service":                               1,
		"istio/kustomization.yaml Kustomization":             1,
		"istio/mesh-config.yaml ConfigMap":                   1,
		"istio/authorizationpolicy.yaml AuthorizationPolicy": 1,
		"istio/destinationrule.yaml DestinationRule":         1,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d documents, want %d", k, got[k], n)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: not expected; add it to this test", k)
		}
	}
	for f := range notApplied {
		if _, err := os.Stat(filepath.FromSlash(f)); err != nil {
			t.Errorf("notApplied: %v", err)
		}
	}
}

// documentTree returns the first document of a file as a JSON tree.
func documentTree(t *testing.T, file string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.FromSlash(file))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := kubedoc.Split(data)
	if err != nil || len(docs) == 0 {
		t.Fatalf("%s: %v (%d documents)", file, err, len(docs))
	}
	js, err := yaml.YAMLToJSONStrict(docs[0])
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := json.Unmarshal(js, &tree); err != nil {
		t.Fatal(err)
	}
	return tree
}

// The decoder is only worth something if it fails: mutated copies of the real manifests must
// not decode.
func TestStrictDecoderRejectsMutatedCopies(t *testing.T) {
	dir := t.TempDir()
	textual := []struct {
		name, file, old, new, wantErr string
	}{
		{"misspelt container field", "deployment.yaml", "          readinessProbe:\n", "          readynessProbe:\n", `readynessProbe`},
		{"field name in the wrong case", "deployment.yaml", "          readinessProbe:\n", "          readinessprobe:\n", `readinessprobe`},
		{"duplicate key", "deployment.yaml", "  replicas: 2\n", "  replicas: 2\n  replicas: 3\n", "duplicate"},
		{"misspelt Service field", "service.yaml", "      appProtocol: grpc\n", "      appProtocoll: grpc\n", `appProtocoll`},
		{"misspelt kustomization field", "kustomization.yaml", "resources:\n", "resource:\n", `unknown field "resource"`},
		{"misspelt AuthorizationPolicy spec field", "istio/authorizationpolicy.yaml", "            paths:", "            pathz:", "pathz"},
		{"field Istio lacks in the mesh config", "istio/mesh-config.yaml", "          failOpen: false\n", "          failOpen: false\n          includePeerCertificate: true\n", "includePeerCertificate"},
	}
	for _, tc := range textual {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.FromSlash(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeFile(tc.file); err != nil {
				t.Fatalf("the original does not decode: %v", err)
			}
			if bytes.Count(data, []byte(tc.old)) != 1 {
				t.Fatalf("%s: %q occurs %d times, want once", tc.file, tc.old, bytes.Count(data, []byte(tc.old)))
			}
			mutated := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(mutated, bytes.Replace(data, []byte(tc.old), []byte(tc.new), 1), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = decodeFile(filepath.ToSlash(mutated))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("mutated copy: error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}

	// An unknown top-level field, in a copy of every document of the tree.
	for _, f := range yamlFiles(t) {
		t.Run("unknown top-level field in "+f, func(t *testing.T) {
			data, err := os.ReadFile(filepath.FromSlash(f))
			if err != nil {
				t.Fatal(err)
			}
			docs, err := kubedoc.Split(data)
			if err != nil {
				t.Fatal(err)
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
				tree["certbindUnknownField"] = true
				if _, _, err := decodeDocument(deploytest.MustJSON(t, tree)); err == nil || !strings.Contains(err.Error(), "certbindUnknownField") {
					t.Errorf("document %d: error %v, want one naming certbindUnknownField", i, err)
				}
			}
		})
	}

	// Inside an Istio spec, where Istio's own JSON decoding would let it through.
	t.Run("unknown field deep in the DestinationRule spec", func(t *testing.T) {
		tree := documentTree(t, "istio/destinationrule.yaml")
		deploytest.SetPath(t, tree, "x", "spec", "trafficPolicy", "portLevelSettings", 0, "tls", "credentialNamee")
		js := deploytest.MustJSON(t, tree)
		lenient := new(networkingv1.DestinationRule)
		if err := kubedoc.DecodeJSONStrict(js, lenient); err == nil {
			t.Logf("DisallowUnknownFields alone accepts it (Istio's lenient UnmarshalJSON): the protojson pass is what catches it")
		}
		if _, _, err := decodeDocument(js); err == nil || !strings.Contains(err.Error(), "credentialNamee") {
			t.Fatalf("error %v, want one naming credentialNamee", err)
		}
	})
}

func TestKustomizationsListEveryManifest(t *testing.T) {
	byDir := map[string][]string{}
	for _, f := range yamlFiles(t) {
		byDir[path.Dir(f)] = append(byDir[path.Dir(f)], path.Base(f))
	}
	for dir, files := range byDir {
		kfile := path.Join(dir, "kustomization.yaml")
		ms, err := decodeFile(kfile)
		if err != nil {
			t.Errorf("%s holds manifests but no usable kustomization.yaml: %v", dir, err)
			continue
		}
		k, ok := ms[0].obj.(*kustomization)
		if !ok || len(ms) != 1 {
			t.Errorf("%s: want one Kustomization", kfile)
			continue
		}
		listed := map[string]bool{}
		for _, r := range k.Resources {
			if listed[r] {
				t.Errorf("%s: %s listed twice", kfile, r)
			}
			listed[r] = true
			if strings.Contains(r, "/") || !slices.Contains(files, r) {
				t.Errorf("%s: resource %q is not a YAML file of %s", kfile, r, dir)
			}
		}
		for _, f := range files {
			full := path.Join(dir, f)
			switch {
			case f == "kustomization.yaml":
			case notApplied[full] != "":
				if listed[f] {
					t.Errorf("%s lists %s, which is %s", kfile, f, notApplied[full])
				}
			case !listed[f]:
				t.Errorf("%s does not list %s", kfile, f)
			}
		}
	}
}

func TestDeployment(t *testing.T) {
	all := loadAll(t)
	d := only[*appsv1.Deployment](t, all)
	ps := d.Spec.Template.Spec
	c := deploytest.CertbindContainer(t, d)

	if d.Namespace != "certbind" {
		t.Errorf("namespace %q", d.Namespace)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", d.Spec.Replicas)
	}
	if c.Image != "ghcr.io/certbind/certbind:0.1.0" {
		t.Errorf("image %q", c.Image)
	}
	if len(c.Command) != 0 {
		t.Errorf("command %q: keep the image's entrypoint (certbind)", c.Command)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("selector %v does not select the pod template's labels %v (%v)", d.Spec.Selector, d.Spec.Template.Labels, err)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update must keep every replica until its replacement is ready (maxUnavailable 0)")
	}

	// The command line of the brief, with flags the binary defines.
	flags := deploytest.ServeArgs(t, c.Args)
	want := map[string]string{
		"config":        "/etc/certbind/certbind.yaml",
		"grpc-addr":     ":9191",
		"http-addr":     ":9192",
		"admin-addr":    ":9090",
		"tls-cert":      "/etc/certbind/tls/tls.crt",
		"tls-key":       "/etc/certbind/tls/tls.key",
		"tls-client-ca": "/etc/certbind/tls/ca.crt",
		"log-format":    "json",
	}
	if fmt.Sprint(flags) != fmt.Sprint(want) {
		t.Errorf("serve flags\n got %v\nwant %v", flags, want)
	}
	defined := deploytest.ServeFlagNames(t)
	for name := range flags {
		if !defined[name] {
			t.Errorf("--%s: cmd/certbind/serve.go defines no such flag", name)
		}
	}

	// Ports: every listener has its named container port.
	named := map[string]int32{}
	for _, p := range c.Ports {
		if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
			t.Errorf("port name %q: %v", p.Name, errs)
		}
		if p.Protocol != corev1.ProtocolTCP {
			t.Errorf("port %s: protocol %q", p.Name, p.Protocol)
		}
		named[p.Name] = p.ContainerPort
	}
	for name, flag := range map[string]string{"grpc": "grpc-addr", "http": "http-addr", "admin": "admin-addr"} {
		if named[name] != deploytest.PortOf(t, flags[flag]) {
			t.Errorf("container port %s = %d, --%s listens on %s", name, named[name], flag, flags[flag])
		}
	}

	// Probes: HTTP GETs on the admin listener.
	admin := deploytest.PortOf(t, flags["admin-addr"])
	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"startupProbe", c.StartupProbe, "/healthz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe", p.name)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path {
			t.Errorf("%s: path %q, want %q", p.name, g.Path, p.path)
		}
		if g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
			t.Errorf("%s: scheme %q: the admin listener is plain HTTP", p.name, g.Scheme)
		}
		if got := deploytest.ContainerPort(t, c, g.Port); got != admin {
			t.Errorf("%s: port %s = %d, want the admin port %d", p.name, g.Port.String(), got, admin)
		}
	}
	if sp := c.StartupProbe; sp != nil && sp.PeriodSeconds*sp.FailureThreshold < 30 {
		t.Errorf("startupProbe allows only %ds to start", sp.PeriodSeconds*sp.FailureThreshold)
	}

	// Shutdown: preStop sleep plus certbind's drain (default --drain-timeout 10s) fit the grace
	// period.
	if ps.TerminationGracePeriodSeconds == nil || *ps.TerminationGracePeriodSeconds != 30 {
		t.Errorf("terminationGracePeriodSeconds %v, want 30", ps.TerminationGracePeriodSeconds)
	}
	drain := int64(10)
	if v, ok := flags["drain-timeout"]; ok {
		t.Fatalf("--drain-timeout=%s: teach this test to parse it", v)
	}
	var preStop int64
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = c.Lifecycle.PreStop.Sleep.Seconds
	}
	if ps.TerminationGracePeriodSeconds != nil && preStop+drain >= *ps.TerminationGracePeriodSeconds {
		t.Errorf("preStop %ds + drain %ds do not fit in %ds", preStop, drain, *ps.TerminationGracePeriodSeconds)
	}

	// Resources.
	for _, r := range []struct {
		list corev1.ResourceList
		name corev1.ResourceName
		want string
	}{
		{c.Resources.Requests, corev1.ResourceCPU, "100m"},
		{c.Resources.Requests, corev1.ResourceMemory, "64Mi"},
		{c.Resources.Limits, corev1.ResourceMemory, "256Mi"},
	} {
		q, ok := r.list[r.name]
		if !ok || q.Cmp(resource.MustParse(r.want)) != 0 {
			t.Errorf("resources %s: %v, want %s", r.name, q.String(), r.want)
		}
	}
	if len(c.Resources.Requests) != 2 || len(c.Resources.Limits) != 1 {
		t.Errorf("resources: requests %v limits %v: want cpu and memory requests, a memory limit only", c.Resources.Requests, c.Resources.Limits)
	}

	// Anti-affinity: preferred, per node, on the pod's own labels.
	aa := (*corev1.PodAntiAffinity)(nil)
	if ps.Affinity != nil {
		aa = ps.Affinity.PodAntiAffinity
	}
	if aa == nil || len(aa.PreferredDuringSchedulingIgnoredDuringExecution) != 1 || len(aa.RequiredDuringSchedulingIgnoredDuringExecution) != 0 {
		t.Fatal("want exactly one preferred (and no required) pod anti-affinity term")
	}
	term := aa.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
	if term.TopologyKey != corev1.LabelHostname {
		t.Errorf("anti-affinity topologyKey %q, want %q", term.TopologyKey, corev1.LabelHostname)
	}
	if s, err := metav1.LabelSelectorAsSelector(term.LabelSelector); err != nil || s.Empty() || !s.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("anti-affinity selector %v does not select certbind's pods", term.LabelSelector)
	}

	// Service account: the one in the tree, without a token.
	sa := only[*corev1.ServiceAccount](t, all)
	if ps.ServiceAccountName != sa.Name || sa.Namespace != d.Namespace {
		t.Errorf("serviceAccountName %q, ServiceAccount %s/%s", ps.ServiceAccountName, sa.Namespace, sa.Name)
	}
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken ||
		sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken must be false on the pod and the ServiceAccount")
	}
}

func TestDeploymentSecurityContext(t *testing.T) {
	all := loadAll(t)
	deploytest.RestrictedPod(t, only[*appsv1.Deployment](t, all))
	// The rest of the restricted Pod Security Standard, which the Namespace enforces.
	ns := only[*corev1.Namespace](t, all)
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace %s: pod-security enforce %q, want restricted", ns.Name, ns.Labels["pod-security.kubernetes.io/enforce"])
	}
}

// TestDeploymentVolumes: the files the command line and the configuration name are where the
// volumes put them, and every volume can be updated in place (certbind reloads).
func TestDeploymentVolumes(t *testing.T) {
	all := loadAll(t)
	d := only[*appsv1.Deployment](t, all)
	ps := d.Spec.Template.Spec
	c := deploytest.CertbindContainer(t, d)
	flags := deploytest.ServeArgs(t, c.Args)
	cm := certbindConfigMap(t, all)

	volumes := map[string]corev1.Volume{}
	for _, v := range ps.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]corev1.Volume{} // mount path -> volume
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Fatalf("volumeMount %s: no such volume", m.Name)
		}
		if !m.ReadOnly {
			t.Errorf("volumeMount %s: not readOnly", m.Name)
		}
		if m.SubPath != "" || m.SubPathExpr != "" {
			t.Errorf("volumeMount %s: subPath mounts never receive updates, and certbind reloads on them", m.Name)
		}
		mounts[m.MountPath] = v
	}
	if len(mounts) != len(volumes) {
		t.Errorf("%d volumes, %d mounted", len(volumes), len(mounts))
	}

	configDir := path.Dir(flags["config"])
	if v := mounts[configDir]; v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
		t.Errorf("%s: want ConfigMap %s mounted there", configDir, cm.Name)
	} else if _, ok := cm.Data[path.Base(flags["config"])]; !ok {
		t.Errorf("ConfigMap %s has no key %s", cm.Name, path.Base(flags["config"]))
	}

	for _, flag := range []string{"tls-cert", "tls-key", "tls-client-ca"} {
		v := mounts[path.Dir(flags[flag])]
		if v.Secret == nil || v.Secret.SecretName != "certbind-tls" {
			t.Errorf("--%s=%s: want Secret certbind-tls mounted at %s", flag, flags[flag], path.Dir(flags[flag]))
		}
	}
	if got := []string{path.Base(flags["tls-cert"]), path.Base(flags["tls-key"]), path.Base(flags["tls-client-ca"])}; !slices.Equal(got, []string{"tls.crt", "tls.key", "ca.crt"}) {
		t.Errorf("TLS file names %v: want the kubernetes.io/tls keys tls.crt, tls.key and ca.crt", got)
	}
	if v := mounts[path.Join(configDir, "pki")]; v.Secret == nil || v.Secret.SecretName != "certbind-client-ca" {
		t.Errorf("%s: want Secret certbind-client-ca mounted there", path.Join(configDir, "pki"))
	}

	// Secrets: group-readable by the pod's fsGroup only.
	psc := ps.SecurityContext
	if psc == nil || psc.FSGroup == nil || *psc.FSGroup != 65532 {
		t.Error("fsGroup must be 65532 so the nonroot user can read 0440 secret files")
	}
	for _, v := range ps.Volumes {
		if v.Secret == nil {
			continue
		}
		if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o440 {
			t.Errorf("volume %s: defaultMode %s, want 0440", v.Name, fileMode(v.Secret.DefaultMode))
		}
		if v.Secret.Optional != nil && *v.Secret.Optional {
			t.Errorf("volume %s: a missing Secret must keep the pod from starting", v.Name)
		}
	}
}

func fileMode(m *int32) string {
	if m == nil {
		return "unset"
	}
	return fmt.Sprintf("%#o", *m)
}

func TestServiceAndDisruptionBudget(t *testing.T) {
	all := loadAll(t)
	d := only[*appsv1.Deployment](t, all)
	c := deploytest.CertbindContainer(t, d)
	podLabels := labels.Set(d.Spec.Template.Labels)

	svc := only[*corev1.Service](t, all)
	if svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("Service type %q, want ClusterIP", svc.Spec.Type)
	}
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, podLabels)
	}
	want := []struct {
		name        string
		port        int32
		appProtocol string
	}{
		{"grpc", 9191, "grpc"}, // Istio and Gateway API read HTTP/2 from it
		{"http", 9192, "https"},
		{"metrics", 9090, "http"},
	}
	if len(svc.Spec.Ports) != len(want) {
		t.Fatalf("Service ports %d, want %d", len(svc.Spec.Ports), len(want))
	}
	for i, w := range want {
		p := svc.Spec.Ports[i]
		ap := ""
		if p.AppProtocol != nil {
			ap = *p.AppProtocol
		}
		if p.Name != w.name || p.Port != w.port || ap != w.appProtocol || p.Protocol != corev1.ProtocolTCP {
			t.Errorf("Service port %d: %s %d appProtocol %q, want %s %d appProtocol %q", i, p.Name, p.Port, ap, w.name, w.port, w.appProtocol)
		}
		if got := deploytest.ContainerPort(t, c, p.TargetPort); got != w.port {
			t.Errorf("Service port %s: targetPort %s is container port %d, want %d", p.Name, p.TargetPort.String(), got, w.port)
		}
	}

	pdb := only[*policyv1.PodDisruptionBudget](t, all)
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(1) || pdb.Spec.MaxUnavailable != nil {
		t.Errorf("PodDisruptionBudget: minAvailable %v maxUnavailable %v, want minAvailable 1", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
	}
	if s, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || s.Empty() || !s.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not select the pods", pdb.Spec.Selector)
	}
	if d.Spec.Replicas != nil && *d.Spec.Replicas <= 1 {
		t.Error("minAvailable 1 with a single replica blocks every drain")
	}

	// Everything of the base is in the certbind Namespace.
	ns := only[*corev1.Namespace](t, all)
	for _, m := range all {
		om, ok := m.obj.(metav1.Object)
		if !ok || strings.Contains(m.file, "/") || m.gvk.Kind == "Namespace" {
			continue
		}
		if om.GetNamespace() != ns.Name {
			t.Errorf("%v: namespace %q, want %q", m, om.GetNamespace(), ns.Name)
		}
	}
}

// writeClientPKI writes what the Secret certbind-client-ca holds into dir/pki: a generated
// client CA (ca.pem) and the partner's pinned self-signed certificate (partner.jwks.json).
func writeClientPKI(t *testing.T, dir string) *pki.Cert {
	t.Helper()
	ca := pki.NewRoot("certbind test client CA")
	partner := pki.SelfSigned("partner", pki.ClientAuth())
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key:          partner.Cert.PublicKey,
		KeyID:        "partner",
		Use:          "sig",
		Certificates: []*x509.Certificate{partner.Cert},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"ca.pem": ca.PEM(), "partner.jwks.json": jwks} {
		if err := os.WriteFile(filepath.Join(dir, "pki", name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca
}

// parseCertbindConfig loads the ConfigMap's certbind.yaml the way certbind does, from a directory
// laid out like the pod's /etc/certbind.
func parseCertbindConfig(t *testing.T, all []manifest) (*policy.Config, *pki.Cert, string) {
	t.Helper()
	cm := certbindConfigMap(t, all)
	data, ok := cm.Data["certbind.yaml"]
	if !ok {
		t.Fatal("ConfigMap certbind-config has no certbind.yaml")
	}
	dir := t.TempDir()
	ca := writeClientPKI(t, dir)
	cfg, err := policy.ParseConfig([]byte(data), dir, policy.LoadOptions{})
	if err != nil {
		t.Fatalf("certbind.yaml does not load: %v", err)
	}
	return cfg, ca, dir
}

func TestConfigMapLoadsWithParseConfig(t *testing.T) {
	all := loadAll(t)
	cfg, ca, dir := parseCertbindConfig(t, all)

	anchors := cfg.TrustAnchors()
	if len(anchors) != 1 || !anchors[0].Equal(ca.Cert) {
		t.Errorf("trust anchors %d, want the generated CA only", len(anchors))
	}
	var ids []string
	for _, c := range cfg.Clients() {
		ids = append(ids, c.ID)
	}
	if !slices.Equal(ids, []string{"billing", "reports", "partner"}) {
		t.Errorf("clients %v, want the README example's billing, reports, partner", ids)
	}
	// Every file the configuration reads is in the client CA Secret's mount.
	if len(cfg.Files()) == 0 {
		t.Error("the configuration read no files")
	}
	for _, f := range cfg.Files() {
		rel, err := filepath.Rel(filepath.Join(dir, "pki"), f)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("the configuration reads %s, outside pki/ (the Secret certbind-client-ca)", f)
		}
	}

	data := []byte(certbindConfigMap(t, all).Data["certbind.yaml"])
	// Without the Secret's files the configuration must not load.
	if _, err := policy.ParseConfig(data, t.TempDir(), policy.LoadOptions{}); err == nil || !strings.Contains(err.Error(), "trust_anchors") {
		t.Errorf("without pki/ca.pem: error %v, want one naming trust_anchors", err)
	}
	// certbind's own decoder is strict too: a mutated copy with an unknown key does not load.
	mutated := append(bytes.Clone(data), "\nunknown_key: true\n"...)
	if _, err := policy.ParseConfig(mutated, dir, policy.LoadOptions{}); err == nil || !strings.Contains(err.Error(), "unknown_key") {
		t.Errorf("mutated copy: error %v, want one naming unknown_key", err)
	}
}

// meshProvider returns the extension provider the AuthorizationPolicy names.
func meshProvider(t *testing.T, all []manifest, name string) *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider {
	t.Helper()
	mc, err := meshConfig(istioMeshConfigMap(t, all))
	if err != nil {
		t.Fatal(err)
	}
	var found *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider
	for _, p := range mc.GetExtensionProviders() {
		if p.GetName() == name {
			if found != nil {
				t.Fatalf("extension provider %q defined twice", name)
			}
			found = p.GetEnvoyExtAuthzGrpc()
			if found == nil {
				t.Fatalf("extension provider %q is not envoyExtAuthzGrpc", name)
			}
		}
	}
	if found == nil {
		t.Fatalf("the mesh config defines no extension provider %q", name)
	}
	return found
}

func TestIstio(t *testing.T) {
	all := loadAll(t)
	svc := only[*corev1.Service](t, all)
	ap := only[*securityv1.AuthorizationPolicy](t, all)
	dr := only[*networkingv1.DestinationRule](t, all)
	d := only[*appsv1.Deployment](t, all)

	host := svc.Name + "." + svc.Namespace + ".svc.cluster.local"
	var grpcPort int32
	for _, p := range svc.Spec.Ports {
		if p.Name == "grpc" {
			grpcPort = p.Port
		}
	}

	// The AuthorizationPolicy: CUSTOM, through the certbind provider, on the gateway.
	if ap.Spec.GetAction() != securityapi.AuthorizationPolicy_CUSTOM {
		t.Errorf("action %v, want CUSTOM", ap.Spec.GetAction())
	}
	providerName := ap.Spec.GetProvider().GetName()
	selector := ap.Spec.GetSelector().GetMatchLabels()
	if len(selector) == 0 {
		t.Error("the AuthorizationPolicy selects no workload: it would apply to every workload of its namespace")
	}
	var paths []string
	for _, r := range ap.Spec.GetRules() {
		for _, to := range r.GetTo() {
			paths = append(paths, to.GetOperation().GetPaths()...)
		}
	}
	if !slices.Equal(paths, []string{"/oauth2/token", "/api/*"}) {
		t.Errorf("paths %v, want /oauth2/token and /api/*", paths)
	}

	// The provider behind it: certbind's Service and gRPC port, failing closed, with the body.
	p := meshProvider(t, all, providerName)
	if p.GetService() != host || p.GetPort() != uint32(grpcPort) {
		t.Errorf("provider %q: %s:%d, want %s:%d", providerName, p.GetService(), p.GetPort(), host, grpcPort)
	}
	if p.GetFailOpen() {
		t.Error("failOpen: certbind unreachable must deny")
	}
	if to := p.GetTimeout(); to == nil || to.AsDuration().Seconds() > 1 {
		t.Errorf("timeout %v: set one, Istio's default is 600s", to)
	}
	body := p.GetIncludeRequestBodyInCheck()
	if body == nil || body.GetMaxRequestBytes() < 4096 {
		t.Errorf("includeRequestBodyInCheck %v: client_auth reads client_id from the token request body", body)
	}
	if body != nil && (!body.GetPackAsBytes() || !body.GetAllowPartialMessage()) {
		t.Errorf("includeRequestBodyInCheck %v: want packAsBytes (raw API bodies) and allowPartialMessage (no 413 for /api/ uploads; certbind refuses a truncated token request itself)", body)
	}

	// Istio's CUSTOM provider sends no certbind_mode context extension: certbind's routes must
	// give every path the policy sends a mode, the right one.
	cfg, _, _ := parseCertbindConfig(t, all)
	engine := policy.NewEngine(policy.EngineConfig{Config: cfg})
	wantMode := map[string]policy.Mode{"/oauth2/token": policy.ModeClientAuth, "/api/*": policy.ModeBoundToken}
	for _, pth := range paths {
		concrete := pth
		if prefix, ok := strings.CutSuffix(pth, "*"); ok {
			concrete = prefix + "accounts"
		}
		dec := engine.Decide(context.Background(), policy.Input{Request: policy.Request{
			Method: "POST", Host: "api.example.org", Path: concrete, Headers: map[string]string{},
		}})
		if dec.Reason == policy.ReasonNoPolicy || dec.Mode != wantMode[pth] {
			t.Errorf("%s (%s): mode %q reason %s, want mode %q from certbind's routes", pth, concrete, dec.Mode, dec.Reason, wantMode[pth])
		}
		if dec.Allow {
			t.Errorf("%s: a request without certificate or token was allowed", pth)
		}
	}

	// Gateway to certbind: mutual TLS, to the same host and port, on the same workload.
	if dr.Spec.GetHost() != host {
		t.Errorf("DestinationRule host %q, want %q", dr.Spec.GetHost(), host)
	}
	if dr.Namespace != ap.Namespace || fmt.Sprint(dr.Spec.GetWorkloadSelector().GetMatchLabels()) != fmt.Sprint(selector) {
		t.Errorf("DestinationRule %s %v, AuthorizationPolicy %s %v: want the same namespace and workload", dr.Namespace,
			dr.Spec.GetWorkloadSelector().GetMatchLabels(), ap.Namespace, selector)
	}
	var tls *networkingapi.ClientTLSSettings
	for _, pl := range dr.Spec.GetTrafficPolicy().GetPortLevelSettings() {
		if pl.GetPort().GetNumber() == uint32(grpcPort) {
			tls = pl.GetTls()
		}
	}
	if tls == nil || tls.GetMode() != networkingapi.ClientTLSSettings_MUTUAL || tls.GetCredentialName() == "" {
		t.Errorf("port %d: TLS %v, want MUTUAL with a credentialName (certbind requires Envoy's client certificate)", grpcPort, tls)
	} else if tls.GetSni() != host || !slices.Equal(tls.GetSubjectAltNames(), []string{host}) {
		t.Errorf("port %d: sni %q subjectAltNames %v, want %s", grpcPort, tls.GetSni(), tls.GetSubjectAltNames(), host)
	}

	// certbind terminates that TLS itself: no sidecar in front of it.
	if d.Spec.Template.Labels["sidecar.istio.io/inject"] != "false" {
		t.Error(`pod label sidecar.istio.io/inject: "false" missing`)
	}
}

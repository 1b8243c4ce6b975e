package envoygateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/certbind/certbind/deploy/deploytest"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	jsonpatch "github.com/evanphx/json-patch"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwapiv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/certbind/certbind/deploy/kubedoc"
)

// base is the kustomization this overlay builds on.
const base = "../kubernetes"

// patchFiles are the YAML files of this directory that are kustomize patches, not resources.
var patchFiles = map[string]bool{"certbind-config.yaml": true}

// kustomization mirrors the fields of kustomize's Kustomization (kustomize.config.k8s.io/v1beta1)
// that this overlay and its base use; anything else fails the strict decode, so using another
// kustomize feature means teaching render about it.
type kustomization struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Resources  []string         `json:"resources"`
	Patches    []kustomizePatch `json:"patches,omitempty"`
}

// kustomizePatch is a kustomize patch: a file or an inline patch, strategic-merge (a whole
// object, without target) or JSON 6902 (a list of operations, with target).
type kustomizePatch struct {
	Path   string           `json:"path,omitempty"`
	Patch  string           `json:"patch,omitempty"`
	Target *kustomizeTarget `json:"target,omitempty"`
}

type kustomizeTarget struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version,omitempty"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

var kustomizeGroupVersion = schema.GroupVersion{Group: "kustomize.config.k8s.io", Version: "v1beta1"}

// kinds maps every apiVersion/kind this overlay and its base may hold to a new typed object:
// Envoy Gateway's own API types, Gateway API's, and Kubernetes'.
var kinds = kubedoc.Kinds{
	corev1.SchemeGroupVersion.WithKind("Namespace"):             func() any { return new(corev1.Namespace) },
	corev1.SchemeGroupVersion.WithKind("ServiceAccount"):        func() any { return new(corev1.ServiceAccount) },
	corev1.SchemeGroupVersion.WithKind("ConfigMap"):             func() any { return new(corev1.ConfigMap) },
	corev1.SchemeGroupVersion.WithKind("Secret"):                func() any { return new(corev1.Secret) },
	corev1.SchemeGroupVersion.WithKind("Service"):               func() any { return new(corev1.Service) },
	appsv1.SchemeGroupVersion.WithKind("Deployment"):            func() any { return new(appsv1.Deployment) },
	policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"): func() any { return new(policyv1.PodDisruptionBudget) },
	gwapiv1.SchemeGroupVersion.WithKind("GatewayClass"):         func() any { return new(gwapiv1.GatewayClass) },
	gwapiv1.SchemeGroupVersion.WithKind("Gateway"):              func() any { return new(gwapiv1.Gateway) },
	gwapiv1.SchemeGroupVersion.WithKind("HTTPRoute"):            func() any { return new(gwapiv1.HTTPRoute) },
	gwapiv1.SchemeGroupVersion.WithKind("BackendTLSPolicy"):     func() any { return new(gwapiv1.BackendTLSPolicy) },
	// v1beta1: the version Envoy Gateway reads ReferenceGrants in.
	gwapiv1b1.SchemeGroupVersion.WithKind("ReferenceGrant"):      func() any { return new(gwapiv1b1.ReferenceGrant) },
	egv1a1.GroupVersion.WithKind(egv1a1.KindEnvoyProxy):          func() any { return new(egv1a1.EnvoyProxy) },
	egv1a1.GroupVersion.WithKind(egv1a1.KindClientTrafficPolicy): func() any { return new(egv1a1.ClientTrafficPolicy) },
	egv1a1.GroupVersion.WithKind(egv1a1.KindSecurityPolicy):      func() any { return new(egv1a1.SecurityPolicy) },
	kustomizeGroupVersion.WithKind("Kustomization"):              func() any { return new(kustomization) },
}

// manifest is one decoded YAML document.
type manifest struct {
	file  string // slash-separated, relative to this directory
	index int    // the document's position in its file
	gvk   schema.GroupVersionKind
	obj   any
	json  []byte // the document as JSON
}

func (m manifest) String() string { return fmt.Sprintf("%s#%d (%s)", m.file, m.index, m.gvk.Kind) }

// key names an object the way kustomize finds it: group, kind, namespace, name.
func (m manifest) key() string {
	om, _ := m.obj.(metav1.Object)
	if om == nil {
		return m.gvk.String()
	}
	return objectKey(m.gvk.Group, m.gvk.Kind, om.GetNamespace(), om.GetName())
}

func objectKey(group, kind, namespace, name string) string {
	return group + "/" + kind + " " + namespace + "/" + name
}

// decodeDocument decodes one YAML document strictly, as the API server does: duplicate keys,
// unknown fields and keys that match a field only case-insensitively are errors at every level.
func decodeDocument(doc []byte) (any, schema.GroupVersionKind, []byte, error) {
	return kinds.Decode(doc)
}

// decodeFile decodes every document of a file; name is how the manifests will call it.
func decodeFile(file, name string) ([]manifest, error) {
	data, err := os.ReadFile(filepath.FromSlash(file))
	if err != nil {
		return nil, err
	}
	docs, err := kubedoc.Split(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no YAML document", name)
	}
	var out []manifest
	for i, doc := range docs {
		obj, gvk, js, err := decodeDocument(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		out = append(out, manifest{file: name, index: i, gvk: gvk, obj: obj, json: js})
	}
	return out, nil
}

// yamlFiles lists this directory's YAML files (no subdirectories), sorted.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() {
			if e.Name() != "testdata" {
				t.Errorf("subdirectory %s: this test reads only the top level; teach it", e.Name())
			}
			continue
		}
		if strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml") {
			files = append(files, e.Name())
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("no YAML files found")
	}
	return files
}

// loadAll decodes every YAML document of this directory, failing the test on the first error.
func loadAll(t *testing.T) []manifest {
	t.Helper()
	var all []manifest
	for _, f := range yamlFiles(t) {
		ms, err := decodeFile(f, f)
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

func named[T metav1.Object](t *testing.T, all []manifest, namespace, name string) T {
	t.Helper()
	for _, o := range objects[T](all) {
		if o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	var zero T
	t.Fatalf("no %T %s/%s", zero, namespace, name)
	return zero
}

func overlayKustomization(t *testing.T) *kustomization {
	t.Helper()
	ms, err := decodeFile("kustomization.yaml", "kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k, ok := ms[0].obj.(*kustomization)
	if !ok || len(ms) != 1 {
		t.Fatal("kustomization.yaml: want one Kustomization")
	}
	return k
}

// render does what `kubectl apply -k .` builds, for the kustomize features this overlay uses:
// the resources (files, and the base directory with its own kustomization), then the patches,
// strategic-merge by the patched object's kind and name, JSON 6902 by target. Each patched
// object is decoded strictly again.
func render(t *testing.T) []manifest {
	t.Helper()
	k := overlayKustomization(t)
	var out []manifest
	for _, r := range k.Resources {
		if r == base {
			bk, err := decodeFile(path.Join(base, "kustomization.yaml"), path.Join(base, "kustomization.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			baseK, ok := bk[0].obj.(*kustomization)
			if !ok || len(baseK.Patches) != 0 {
				t.Fatalf("%s: want a kustomization without patches (teach render about them)", base)
			}
			for _, br := range baseK.Resources {
				ms, err := decodeFile(path.Join(base, br), path.Join(base, br))
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, ms...)
			}
			continue
		}
		if strings.Contains(r, "/") {
			t.Fatalf("resource %q: only %s and files of this directory are expected", r, base)
		}
		ms, err := decodeFile(r, r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ms...)
	}
	seen := map[string]string{}
	for _, m := range out {
		if prev, dup := seen[m.key()]; dup {
			t.Fatalf("%s and %v are the same object %s: kustomize refuses that", prev, m, m.key())
		}
		seen[m.key()] = m.String()
	}

	for i, p := range k.Patches {
		switch {
		case p.Path != "" && p.Patch == "" && p.Target == nil:
			ms, err := decodeFile(p.Path, p.Path)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 1 {
				t.Fatalf("patches[%d] %s: want one object", i, p.Path)
			}
			patch := ms[0]
			idx := find(t, out, patch.key(), fmt.Sprintf("patches[%d] (%s)", i, p.Path))
			target := out[idx]
			dataStruct := kinds[target.gvk]()
			merged, err := strategicpatch.StrategicMergePatch(target.json, patch.json, dataStruct)
			if err != nil {
				t.Fatalf("patches[%d] %s: %v", i, p.Path, err)
			}
			out[idx] = redecode(t, target, merged, p.Path)
		case p.Patch != "" && p.Path == "" && p.Target != nil:
			ops, err := yaml.YAMLToJSONStrict([]byte(p.Patch))
			if err != nil {
				t.Fatalf("patches[%d]: %v", i, err)
			}
			jp, err := jsonpatch.DecodePatch(ops)
			if err != nil {
				t.Fatalf("patches[%d]: not a JSON 6902 patch: %v", i, err)
			}
			tg := p.Target
			idx := find(t, out, objectKey(tg.Group, tg.Kind, tg.Namespace, tg.Name), fmt.Sprintf("patches[%d] target", i))
			target := out[idx]
			if tg.Version != "" && tg.Version != target.gvk.Version {
				t.Fatalf("patches[%d]: target version %s, the object is %s", i, tg.Version, target.gvk.Version)
			}
			patched, err := jp.Apply(target.json)
			if err != nil {
				t.Fatalf("patches[%d]: %v", i, err)
			}
			out[idx] = redecode(t, target, patched, fmt.Sprintf("patches[%d]", i))
		default:
			t.Fatalf("patches[%d]: want path (strategic merge) or patch with target (JSON 6902)", i)
		}
	}
	return out
}

func find(t *testing.T, all []manifest, key, what string) int {
	t.Helper()
	idx := -1
	for i, m := range all {
		if m.key() == key {
			if idx >= 0 {
				t.Fatalf("%s: %s matches more than one object", what, key)
			}
			idx = i
		}
	}
	if idx < 0 {
		t.Fatalf("%s: no object %s to patch", what, key)
	}
	return idx
}

func redecode(t *testing.T, was manifest, js []byte, by string) manifest {
	t.Helper()
	obj, gvk, _, err := decodeDocument(js)
	if err != nil {
		t.Fatalf("%v patched by %s: %v", was, by, err)
	}
	if gvk != was.gvk {
		t.Fatalf("%v patched by %s: now %v", was, by, gvk)
	}
	was.obj, was.json = obj, js
	was.file += " patched by " + by
	return was
}

func TestEveryManifestDecodesStrictly(t *testing.T) {
	all := loadAll(t)
	got := map[string]int{}
	for _, m := range all {
		got[m.file+" "+m.gvk.Kind]++
		om, ok := m.obj.(metav1.Object)
		if !ok {
			continue
		}
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
		// Namespaced objects say their namespace: this overlay spans two.
		clusterScoped := m.gvk.Kind == "Namespace" || m.gvk.Kind == "GatewayClass"
		if clusterScoped != (om.GetNamespace() == "") {
			t.Errorf("%v: namespace %q", m, om.GetNamespace())
		}
	}
	want := map[string]int{
		"kustomization.yaml Kustomization":             1,
		"namespace.yaml Namespace":                     1,
		"gateway.yaml GatewayClass":                    1,
		"gateway.yaml Gateway":                         1,
		"envoyproxy.yaml EnvoyProxy":                   1,
		"clienttrafficpolicy.yaml ClientTrafficPolicy": 1,
		"httproutes.yaml HTTPRoute":                    4,
		"securitypolicy.yaml SecurityPolicy":           4,
		"backendtlspolicy.yaml BackendTLSPolicy":       1,
		"referencegrant.yaml ReferenceGrant":           1,
		"certbind-config.yaml ConfigMap":               1,
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
}

// documentTree returns document i of a file as a JSON tree.
func documentTree(t *testing.T, file string, i int) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.FromSlash(file))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := kubedoc.Split(data)
	if err != nil || len(docs) <= i {
		t.Fatalf("%s: %v (%d documents)", file, err, len(docs))
	}
	js, err := yaml.YAMLToJSONStrict(docs[i])
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
		{"misspelt ext auth field", "securitypolicy.yaml", "    bodyToExtAuth:\n", "    bodyToExtAuths:\n", `unknown field "spec.extAuth.bodyToExtAuths"`},
		{"field in the wrong case", "securitypolicy.yaml", "    bodyToExtAuth:\n", "    BodyToExtAuth:\n", `unknown field "spec.extAuth.BodyToExtAuth"`},
		{"duplicate key", "clienttrafficpolicy.yaml", "      mode: SanitizeSet\n", "      mode: SanitizeSet\n      mode: AppendForward\n", `key "mode" already set`},
		{"XFCC field of Envoy, not of Envoy Gateway", "clienttrafficpolicy.yaml", "      mode: SanitizeSet\n", "      mode: SanitizeSet\n      forwardClientCertDetails: SANITIZE_SET\n", "forwardClientCertDetails"},
		{"misspelt listener field", "gateway.yaml", "        certificateRefs:\n", "        certificateRef:\n", `unknown field "spec.listeners[0].tls.certificateRef"`},
		{"misspelt route match", "httproutes.yaml", "            type: PathPrefix\n            value: /oauth2/token\n", "            type: PathPrefix\n            values: /oauth2/token\n", `unknown field "spec.rules[0].matches[0].path.values"`},
		{"misspelt EnvoyProxy TLS field", "envoyproxy.yaml", "    alpnProtocols:\n", "    alpn:\n", `unknown field "spec.backendTLS.alpn"`},
		{"misspelt kustomize field", "kustomization.yaml", "patches:\n", "patchesStrategicMerge:\n", `unknown field "patchesStrategicMerge"`},
	}
	for _, tc := range textual {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeFile(tc.file, tc.file); err != nil {
				t.Fatalf("the original does not decode: %v", err)
			}
			if bytes.Count(data, []byte(tc.old)) < 1 {
				t.Fatalf("%s: %q does not occur", tc.file, tc.old)
			}
			mutated := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(mutated, bytes.Replace(data, []byte(tc.old), []byte(tc.new), 1), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = decodeFile(mutated, tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("mutated copy: error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}

	// An unknown top-level field, in a copy of every document.
	for _, f := range yamlFiles(t) {
		t.Run("unknown top-level field in "+f, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			docs, err := kubedoc.Split(data)
			if err != nil {
				t.Fatal(err)
			}
			for i := range docs {
				tree := documentTree(t, f, i)
				tree["certbindUnknownField"] = true
				if _, _, _, err := decodeDocument(deploytest.MustJSON(t, tree)); err == nil || !strings.Contains(err.Error(), "certbindUnknownField") {
					t.Errorf("document %d: error %v, want one naming certbindUnknownField", i, err)
				}
			}
		})
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	k := overlayKustomization(t)
	listed := map[string]bool{}
	for _, r := range k.Resources {
		if listed[r] {
			t.Errorf("resource %s listed twice", r)
		}
		listed[r] = true
	}
	if !listed[base] {
		t.Errorf("resources: %s (certbind itself) missing", base)
	}
	patched := map[string]bool{}
	for _, p := range k.Patches {
		if p.Path != "" {
			patched[p.Path] = true
		}
	}
	for _, f := range yamlFiles(t) {
		switch {
		case f == "kustomization.yaml":
		case patchFiles[f]:
			if !patched[f] || listed[f] {
				t.Errorf("%s is a patch: list it under patches, not resources", f)
			}
		case !listed[f]:
			t.Errorf("kustomization.yaml does not list %s", f)
		}
	}
	for r := range listed {
		if r != base && !slices.Contains(yamlFiles(t), r) {
			t.Errorf("resource %s is not a YAML file of this directory", r)
		}
	}
	for p := range patched {
		if !patchFiles[p] {
			t.Errorf("patch %s: add it to patchFiles", p)
		}
	}
}

func TestRenderAppliesThePatches(t *testing.T) {
	all := render(t)
	cm := named[*corev1.ConfigMap](t, all, "certbind", "certbind-config")
	if !strings.Contains(cm.Data["certbind.yaml"], "certificate_sources") {
		t.Error("the rendered ConfigMap certbind-config is the base's: the strategic-merge patch did not apply")
	}
	d := named[*appsv1.Deployment](t, all, "certbind", "certbind")
	if args := deploytest.CertbindContainer(t, d).Args; !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--allowed-callers=") }) {
		t.Errorf("the rendered Deployment's args %q lack --allowed-callers: the JSON 6902 patch did not apply", args)
	}
	// Every namespace an object of the overlay lives in is part of it.
	namespaces := map[string]bool{}
	for _, ns := range objects[*corev1.Namespace](all) {
		namespaces[ns.Name] = true
	}
	for _, m := range all {
		if om, ok := m.obj.(metav1.Object); ok && om.GetNamespace() != "" && !namespaces[om.GetNamespace()] {
			t.Errorf("%v: namespace %s is not in the overlay", m, om.GetNamespace())
		}
	}
}

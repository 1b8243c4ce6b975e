package envoygateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/certbind/certbind/deploy/deploytest"

	envoygateway "github.com/envoyproxy/gateway"
	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// crdVersion is one served version of a CRD, compiled the way the API server compiles it.
type crdVersion struct {
	source     string // where the CRD came from
	namespaced bool
	structural *structuralschema.Structural
	schema     apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

// crdSet is the CRDs of one source by kind, compiled on first use (Envoy Gateway's EnvoyProxy CRD
// alone is 1.4 MB of schema).
type crdSet struct {
	source string
	crds   map[schema.GroupVersionKind]*apiextensionsv1.CustomResourceDefinition

	mu       sync.Mutex
	compiled map[schema.GroupVersionKind]*crdVersion
}

func parseCRDs(source string, data []byte) (*crdSet, error) {
	s := &crdSet{source: source, crds: map[schema.GroupVersionKind]*apiextensionsv1.CustomResourceDefinition{}, compiled: map[schema.GroupVersionKind]*crdVersion{}}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		var probe struct{ Kind string }
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if probe.Kind != "CustomResourceDefinition" {
			continue // the standard channel also ships a ValidatingAdmissionPolicy
		}
		crd := new(apiextensionsv1.CustomResourceDefinition)
		if err := yaml.UnmarshalStrict(doc, crd); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		for _, v := range crd.Spec.Versions {
			if v.Served {
				s.crds[schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}] = crd
			}
		}
	}
	if len(s.crds) == 0 {
		return nil, fmt.Errorf("%s: no CustomResourceDefinition", source)
	}
	return s, nil
}

// version compiles gvk's schema: structural schema, OpenAPI validator and CEL rules, as the API
// server's CRD handler does. ok is false when the source has no such served version.
func (s *crdSet) version(gvk schema.GroupVersionKind) (*crdVersion, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.compiled[gvk]; ok {
		return v, true, nil
	}
	crd, ok := s.crds[gvk]
	if !ok {
		return nil, false, nil
	}
	var v1schema *apiextensionsv1.JSONSchemaProps
	for _, v := range crd.Spec.Versions {
		if v.Name == gvk.Version && v.Schema != nil {
			v1schema = v.Schema.OpenAPIV3Schema
		}
	}
	if v1schema == nil {
		return nil, true, fmt.Errorf("%s: %v has no openAPIV3Schema", s.source, gvk)
	}
	internal := new(apiextensions.JSONSchemaProps)
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v1schema, internal, nil); err != nil {
		return nil, true, fmt.Errorf("%s: %v: %w", s.source, gvk, err)
	}
	structural, err := structuralschema.NewStructural(internal)
	if err != nil {
		return nil, true, fmt.Errorf("%s: %v: not a structural schema: %w", s.source, gvk, err)
	}
	validator, _, err := apiservervalidation.NewSchemaValidator(internal)
	if err != nil {
		return nil, true, fmt.Errorf("%s: %v: %w", s.source, gvk, err)
	}
	v := &crdVersion{
		source:     s.source,
		namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped,
		structural: structural,
		schema:     validator,
		cel:        cel.NewValidator(structural, true, celconfig.PerCallLimit),
	}
	s.compiled[gvk] = v
	return v, true, nil
}

// validate admits one object as the API server admits a create: unknown fields (which the
// server would prune, silently or with a warning) are errors here, then defaults are applied,
// then the OpenAPI schema, embedded object metadata, list-map and list-set keys, and the CEL
// rules are checked.
func (v *crdVersion) validate(js []byte) error {
	// As the API server decodes a request body: integers stay integers (CEL rules compare
	// ports as int).
	var obj map[string]any
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &obj); err != nil {
		return err
	}
	var errs []error
	if unknown := structuralpruning.PruneWithOptions(obj, v.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}); len(unknown) > 0 {
		errs = append(errs, fmt.Errorf("unknown fields (pruned by the API server): %s", strings.Join(unknown, ", ")))
	}
	structuraldefaulting.Default(obj, v.structural)
	meta, _ := obj["metadata"].(map[string]any)
	if ns, _ := meta["namespace"].(string); v.namespaced != (ns != "") {
		errs = append(errs, fmt.Errorf("metadata.namespace %q: the CRD is namespaced=%v", ns, v.namespaced))
	}
	fieldErrs := apiservervalidation.ValidateCustomResource(nil, obj, v.schema)
	fieldErrs = append(fieldErrs, schemaobjectmeta.Validate(context.Background(), nil, obj, v.structural, false)...)
	fieldErrs = append(fieldErrs, structurallisttype.ValidateListSetsAndMaps(nil, v.structural, obj)...)
	if len(fieldErrs) == 0 {
		celErrs, _ := v.cel.Validate(context.Background(), nil, v.structural, obj, nil, celconfig.RuntimeCELCostBudget)
		fieldErrs = append(fieldErrs, celErrs...)
	}
	for _, e := range fieldErrs {
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		return fmt.Errorf("against %s: %w", v.source, errors.Join(errs...))
	}
	return nil
}

var (
	crdsOnce sync.Once
	crdsErr  error
	// egCRDs: Envoy Gateway's CRDs and the Gateway API experimental channel, as Envoy Gateway
	// embeds them (github.com/envoyproxy/gateway.GatewayCRDs, what its Helm chart installs).
	egCRDs *crdSet
	// standardCRDs: the Gateway API standard channel of the sigs.k8s.io/gateway-api release in
	// go.mod, for clusters that install only that.
	standardCRDs *crdSet
)

func loadCRDs(t *testing.T) (*crdSet, *crdSet) {
	t.Helper()
	crdsOnce.Do(func() {
		egCRDs, crdsErr = parseCRDs("Envoy Gateway's CRDs (github.com/envoyproxy/gateway.GatewayCRDs)", envoygateway.GatewayCRDs)
		if crdsErr != nil {
			return
		}
		standardCRDs, crdsErr = gatewayAPIStandardCRDs()
	})
	if crdsErr != nil {
		t.Fatal(crdsErr)
	}
	return egCRDs, standardCRDs
}

// gatewayAPIStandardCRDs reads config/crd/standard of the sigs.k8s.io/gateway-api module this
// package builds with (the go command knows where it is); the module has no Go package
// embedding them.
func gatewayAPIStandardCRDs() (*crdSet, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		return nil, fmt.Errorf("go list -m sigs.k8s.io/gateway-api: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("%s: no CRD files (%v)", dir, err)
	}
	var all bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		all.WriteString("\n---\n")
		all.Write(data)
	}
	return parseCRDs("the Gateway API standard channel ("+dir+")", all.Bytes())
}

// validateAgainstCRDs validates a document against every CRD source that defines its kind and
// reports how many did; a Gateway API kind must be in both channels, an Envoy Gateway kind in
// Envoy Gateway's CRDs.
func validateAgainstCRDs(t *testing.T, gvk schema.GroupVersionKind, js []byte) (int, error) {
	t.Helper()
	eg, std := loadCRDs(t)
	sources := []*crdSet{eg}
	if gvk.Group == gwapiv1.GroupName {
		sources = append(sources, std)
	}
	var errs []error
	n := 0
	for _, s := range sources {
		v, ok, err := s.version(gvk)
		if err != nil {
			return n, err
		}
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no served %v", s.source, gvk))
			continue
		}
		n++
		if err := v.validate(js); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

func isCustomResource(gvk schema.GroupVersionKind) bool {
	return gvk.Group == gwapiv1.GroupName || gvk.Group == egv1a1.GroupName
}

func TestManifestsPassTheCRDs(t *testing.T) {
	all := loadAll(t)
	checked := 0
	for _, m := range all {
		if !isCustomResource(m.gvk) {
			continue
		}
		n, err := validateAgainstCRDs(t, m.gvk, m.json)
		if err != nil {
			t.Errorf("%v: %v", m, err)
		}
		checked += n
	}
	// 14 custom resources; the 8 Gateway API ones in both channels.
	if checked != 22 {
		t.Errorf("%d CRD validations, want 22: update this count with the manifests", checked)
	}
}

// The CRD pass must catch what the Go types let through: enums, minimums, required fields, CEL
// rules, and experimental fields on a standard-channel cluster.
func TestCRDValidationRejectsMutatedCopies(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		doc     int
		value   any
		path    []any
		wantErr string
	}{
		{"XFCC detail outside the enum", "clienttrafficpolicy.yaml", 0, []any{"Cert", "Chain", "Hash"},
			[]any{"spec", "headers", "xForwardedClientCert", "certDetailsToAdd"}, `Unsupported value: "Hash"`},
		{"certDetailsToAdd with mode Sanitize (CEL)", "clienttrafficpolicy.yaml", 0, "Sanitize",
			[]any{"spec", "headers", "xForwardedClientCert", "mode"}, "certDetailsToAdd can only be set when mode is AppendForward or SanitizeSet"},
		{"client validation mode outside the enum", "clienttrafficpolicy.yaml", 0, "Require",
			[]any{"spec", "tls", "clientValidation", "mode"}, `Unsupported value: "Require"`},
		{"context extension without a value (CEL)", "securitypolicy.yaml", 1, map[string]any{"name": "certbind_mode", "type": "Value"},
			[]any{"spec", "extAuth", "contextExtensions", 0}, "Exactly one of value or valueRef must be set"},
		{"context extension type defaulted to Value, value missing (CEL after defaulting)", "securitypolicy.yaml", 1, map[string]any{"name": "certbind_mode"},
			[]any{"spec", "extAuth", "contextExtensions", 0}, "Exactly one of value or valueRef must be set"},
		{"two context extensions of one name (list map key)", "securitypolicy.yaml", 1, []any{
			map[string]any{"name": "certbind_mode", "type": "Value", "value": "client_auth"},
			map[string]any{"name": "certbind_mode", "type": "Value", "value": "identity"},
		}, []any{"spec", "extAuth", "contextExtensions"}, "Duplicate value"},
		{"body limit 0", "securitypolicy.yaml", 1, 0,
			[]any{"spec", "extAuth", "bodyToExtAuth", "maxRequestBytes"}, "should be greater than or equal to 1"},
		{"ext auth with grpc and http (CEL)", "securitypolicy.yaml", 1, map[string]any{"backendRefs": []any{map[string]any{"name": "certbind", "namespace": "certbind", "port": 9192}}},
			[]any{"spec", "extAuth", "http"}, "only one of grpc or http can be specified"},
		{"statusOnError 200", "securitypolicy.yaml", 0, 200,
			[]any{"spec", "extAuth", "statusOnError"}, "Unsupported value: 200"},
		{"timeout that is not a Gateway API duration", "securitypolicy.yaml", 0, "0.5s",
			[]any{"spec", "extAuth", "timeout"}, "should match"},
		{"policy targeting a Service (CEL)", "securitypolicy.yaml", 2, []any{map[string]any{"group": "", "kind": "Service", "name": "api"}},
			[]any{"spec", "targetRefs"}, "this policy can only have a targetRefs[*].group of gateway.networking.k8s.io"},
		{"HTTPS listener passing TLS through (CEL)", "gateway.yaml", 1, "Passthrough",
			[]any{"spec", "listeners", 0, "tls", "mode"}, "tls mode must be Terminate for protocol HTTPS"},
		{"path that is not absolute", "httproutes.yaml", 0, "oauth2/token",
			[]any{"spec", "rules", 0, "matches", 0, "path", "value"}, "value must be an absolute path"},
		{"BackendTLSPolicy hostname in upper case", "backendtlspolicy.yaml", 0, "Certbind.certbind.svc.cluster.local",
			[]any{"spec", "validation", "hostname"}, "should match"},
		{"TLS version outside the enum", "envoyproxy.yaml", 0, "1.4",
			[]any{"spec", "backendTLS", "minVersion"}, `Unsupported value: "1.4"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			orig := documentTree(t, tc.file, tc.doc)
			gvk := schema.FromAPIVersionAndKind(orig["apiVersion"].(string), orig["kind"].(string))
			if _, err := validateAgainstCRDs(t, gvk, deploytest.MustJSON(t, orig)); err != nil {
				t.Fatalf("the original does not validate: %v", err)
			}
			tree := documentTree(t, tc.file, tc.doc)
			deploytest.SetPath(t, tree, tc.value, tc.path...)
			js := deploytest.MustJSON(t, tree)
			if _, err := validateAgainstCRDs(t, gvk, js); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("mutated copy: error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}

	// A field only the experimental channel has passes Envoy Gateway's bundle and fails the
	// standard channel: the two are really different schemas.
	t.Run("experimental field on the standard channel", func(t *testing.T) {
		// Gateway API's own ExternalAuth filter (GEP-1494) is experimental in this release.
		tree := documentTree(t, "httproutes.yaml", 0)
		deploytest.SetPath(t, tree, []any{map[string]any{"type": "ExternalAuth", "externalAuth": map[string]any{
			"protocol": "GRPC", "grpc": map[string]any{}, "backendRef": map[string]any{"name": "certbind", "namespace": "certbind", "port": 9191},
		}}}, "spec", "rules", 0, "filters")
		js := deploytest.MustJSON(t, tree)
		eg, std := loadCRDs(t)
		gvk := gwapiv1.SchemeGroupVersion.WithKind("HTTPRoute")
		ev, _, _ := eg.version(gvk)
		sv, _, _ := std.version(gvk)
		if err := ev.validate(js); err != nil {
			t.Fatalf("experimental channel: %v", err)
		}
		if err := sv.validate(js); err == nil {
			t.Log("the standard channel of this Gateway API release has ExternalAuth: pick another experimental field")
			t.Fail()
		}
	})
}

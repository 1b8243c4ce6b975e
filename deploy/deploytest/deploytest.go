// Package deploytest holds what the tests of deploy/ (the Kubernetes manifests, the Helm chart,
// the Envoy Gateway overlay) check the same way: the certbind container of a Deployment, its
// serve arguments and ports, and edits of decoded JSON trees for mutated copies.
package deploytest

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// CertbindContainer is the Deployment's one container, which must be named certbind, with no
// init containers beside it.
func CertbindContainer(t testing.TB, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "certbind" {
		t.Fatalf("want one container named certbind, got %d", len(cs))
	}
	if len(d.Spec.Template.Spec.InitContainers) != 0 {
		t.Fatal("no init containers expected")
	}
	return cs[0]
}

// ServeArgs parses the container's arguments: "serve" then --name=value or --name value; a
// flag given twice is an error.
func ServeArgs(t testing.TB, args []string) map[string]string {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("args %q: want the serve subcommand first", args)
	}
	flags := map[string]string{}
	for i := 1; i < len(args); i++ {
		a, ok := strings.CutPrefix(args[i], "--")
		if !ok {
			t.Fatalf("args: %q is not a --flag", args[i])
		}
		name, val, ok := strings.Cut(a, "=")
		if !ok {
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				val = args[i+1]
				i++
			} else {
				val = "true"
			}
		}
		if _, dup := flags[name]; dup {
			t.Fatalf("args: --%s twice", name)
		}
		flags[name] = val
	}
	return flags
}

// PortOf is the port of a host:port address.
func PortOf(t testing.TB, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return int32(n)
}

// ContainerPort resolves a named or numbered port of the container.
func ContainerPort(t testing.TB, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	t.Fatalf("port %s is not a port of container %s", p.String(), c.Name)
	return 0
}

// MustJSON is v in JSON.
func MustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// SetPath sets a value inside a decoded JSON tree; each key is a map key (string) or a list
// index (int).
func SetPath(t testing.TB, tree any, value any, keys ...any) {
	t.Helper()
	for i, k := range keys {
		last := i == len(keys)-1
		switch k := k.(type) {
		case string:
			m, ok := tree.(map[string]any)
			if !ok {
				t.Fatalf("setPath %v: %v is not an object", keys, keys[:i])
			}
			if last {
				m[k] = value
				return
			}
			tree = m[k]
		case int:
			l, ok := tree.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("setPath %v: %v is not a list with element %d", keys, keys[:i], k)
			}
			if last {
				l[k] = value
				return
			}
			tree = l[k]
		default:
			t.Fatalf("setPath %v: key %v is neither a string nor an int", keys, k)
		}
	}
}

// RestrictedPod checks the certbind pod against the restricted Pod Security Standard and
// certbind's own hardening: non-root as the distroless nonroot user (65532), no privilege
// escalation, a read-only root filesystem, every capability dropped, the runtime's seccomp
// profile, no host namespaces or ports, and only ConfigMap and Secret volumes. A container
// setting wins over the pod's, as in Kubernetes.
func RestrictedPod(t testing.TB, d *appsv1.Deployment) {
	t.Helper()
	ps := d.Spec.Template.Spec
	c := CertbindContainer(t, d)
	psc := ps.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("container securityContext missing")
	}
	runAsNonRoot, runAsUser, seccomp := sc.RunAsNonRoot, sc.RunAsUser, sc.SeccompProfile
	if runAsNonRoot == nil {
		runAsNonRoot = psc.RunAsNonRoot
	}
	if runAsUser == nil {
		runAsUser = psc.RunAsUser
	}
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	if runAsNonRoot == nil || !*runAsNonRoot {
		t.Error("runAsNonRoot must be true")
	}
	if runAsUser == nil || *runAsUser != 65532 {
		t.Errorf("runAsUser %v, want 65532 (distroless nonroot)", runAsUser)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation must be false")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem must be true")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("privileged")
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("capabilities %+v, want drop [ALL] and nothing added", sc.Capabilities)
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile %+v, want RuntimeDefault", seccomp)
	}
	if ps.HostNetwork || ps.HostPID || ps.HostIPC {
		t.Error("host namespaces")
	}
	for _, p := range c.Ports {
		if p.HostPort != 0 {
			t.Errorf("port %s: hostPort", p.Name)
		}
	}
	for _, v := range ps.Volumes {
		if v.ConfigMap == nil && v.Secret == nil {
			t.Errorf("volume %s: only ConfigMap and Secret volumes expected", v.Name)
		}
	}
}

// ServeFlagNames reads the flags `certbind serve` defines from its source
// (cmd/certbind/serve.go, from a package two levels below the repository root), so that a
// manifest cannot pass a flag the binary lacks.
func ServeFlagNames(t testing.TB) map[string]bool {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "cmd", "certbind", "serve.go"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range flagDefinition.FindAllSubmatch(src, -1) {
		names[string(m[1])] = true
	}
	// One flag of each kind of definition: a pattern that stopped matching fails here.
	for _, want := range []string{"config", "grpc-addr", "allowed-callers", "memory-limit-mb"} {
		if !names[want] {
			t.Fatalf("found no --%s in cmd/certbind/serve.go (got %v): update this helper's pattern", want, names)
		}
	}
	return names
}

var flagDefinition = regexp.MustCompile(`fs\.[A-Za-z0-9]+Var\(&[^,]+,\s*"([a-z0-9-]+)"`)

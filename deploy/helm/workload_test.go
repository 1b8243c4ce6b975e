package helm

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/certbind/certbind/deploy/deploytest"

	jose "github.com/go-jose/go-jose/v4"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/certbind/certbind/deploy/kubedoc"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/pki"
)

// kustomizeDeployment decodes deploy/kubernetes/deployment.yaml (strictly), the Deployment whose
// resources and hardening the chart must reproduce.
func kustomizeDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "kubernetes", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	obj, _, err := decodeDocument(data)
	if err != nil {
		t.Fatalf("deploy/kubernetes/deployment.yaml: %v", err)
	}
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		t.Fatalf("deploy/kubernetes/deployment.yaml: %T, want a Deployment", obj)
	}
	return d
}

func deref[T any](p *T) any {
	if p == nil {
		return "unset"
	}
	return *p
}

// variant is one values set and what the Deployment's command line must be with it.
type variant struct {
	name  string
	vals  map[string]any
	flags map[string]string
}

func variants(t *testing.T) []variant {
	return []variant{
		{"default values", nil, map[string]string{
			"config":        "/etc/certbind/certbind.yaml",
			"grpc-addr":     ":9191",
			"http-addr":     ":9192",
			"admin-addr":    ":9090",
			"tls-cert":      "/etc/certbind/tls/tls.crt",
			"tls-key":       "/etc/certbind/tls/tls.key",
			"tls-client-ca": "/etc/certbind/tls/ca.crt",
			"log-format":    "json",
			"log-level":     "info",
		}},
		{"every optional object on", readValues(t, allOnValues), map[string]string{
			"config":          "/etc/certbind/certbind.yaml",
			"grpc-addr":       ":10191",
			"http-addr":       ":10192",
			"admin-addr":      ":10090",
			"tls-cert":        "/etc/certbind/tls/tls.crt",
			"tls-key":         "/etc/certbind/tls/tls.key",
			"tls-client-ca":   "/etc/certbind/tls/ca.crt",
			"allowed-callers": "spiffe://example.org/ns/istio-system/sa/istio-ingressgateway,envoy.example.org",
			"log-format":      "text",
			"log-level":       "debug",
			"wait-for-config": "true",
			"memory-limit-mb": "128",
		}},
		{"no TLS, no HTTP endpoint", mergeValues(t, nil, "tls:\n  enabled: false\nhttp:\n  enabled: false\n"), map[string]string{
			"config":     "/etc/certbind/certbind.yaml",
			"grpc-addr":  ":9191",
			"admin-addr": ":9090",
			"log-format": "json",
			"log-level":  "info",
		}},
		{"existing ConfigMap and Secrets", mergeValues(t, nil, "config:\n  existingConfigMap: my-certbind\ntls:\n  secret:\n    name: my-tls\npki:\n  secret:\n    name: my-pki\n"), map[string]string{
			"config":        "/etc/certbind/certbind.yaml",
			"grpc-addr":     ":9191",
			"http-addr":     ":9192",
			"admin-addr":    ":9090",
			"tls-cert":      "/etc/certbind/tls/tls.crt",
			"tls-key":       "/etc/certbind/tls/tls.key",
			"tls-client-ca": "/etc/certbind/tls/ca.crt",
			"log-format":    "json",
			"log-level":     "info",
		}},
	}
}

func TestDeployment(t *testing.T) {
	defined := deploytest.ServeFlagNames(t)
	k := kustomizeDeployment(t)
	kc := deploytest.CertbindContainer(t, k)
	for _, v := range variants(t) {
		t.Run(v.name, func(t *testing.T) {
			all := render(t, v.vals)
			d := only[*appsv1.Deployment](t, all)
			ps := d.Spec.Template.Spec
			c := deploytest.CertbindContainer(t, d)

			// Replicas: 2 by default, none while the HorizontalPodAutoscaler owns the count.
			hpas := objects[*autoscalingv2.HorizontalPodAutoscaler](all)
			switch {
			case len(hpas) > 0 && d.Spec.Replicas != nil:
				t.Errorf("replicas %d with a HorizontalPodAutoscaler: every upgrade would reset its count", *d.Spec.Replicas)
			case len(hpas) == 0 && (d.Spec.Replicas == nil || *d.Spec.Replicas < 2):
				t.Errorf("replicas %v, want at least 2", deref(d.Spec.Replicas))
			case v.vals == nil && *d.Spec.Replicas != 2:
				t.Errorf("replicas %d by default, want 2", *d.Spec.Replicas)
			}
			if len(c.Command) != 0 {
				t.Errorf("command %q: keep the image's entrypoint (certbind)", c.Command)
			}
			if v.vals == nil && c.Image != "ghcr.io/certbind/certbind:"+loadChart(t).Metadata.AppVersion {
				t.Errorf("image %q, want the appVersion's", c.Image)
			}
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("selector %v does not select the pod template's labels %v (%v)", d.Spec.Selector, d.Spec.Template.Labels, err)
			}
			// Selector labels are immutable: only the name and the instance.
			if got := slices.Sorted(func(yield func(string) bool) {
				for k := range d.Spec.Selector.MatchLabels {
					yield(k)
				}
			}); !slices.Equal(got, []string{"app.kubernetes.io/instance", "app.kubernetes.io/name"}) {
				t.Errorf("selector labels %v: want name and instance only (a selector cannot change in an upgrade)", got)
			}
			if !apiequality.Semantic.DeepEqual(d.Spec.Strategy, k.Spec.Strategy) {
				t.Errorf("strategy %+v, want deploy/kubernetes' %+v", d.Spec.Strategy, k.Spec.Strategy)
			}

			// The command line, with flags the binary defines.
			flags := deploytest.ServeArgs(t, c.Args)
			if fmt.Sprint(flags) != fmt.Sprint(v.flags) {
				t.Errorf("serve flags\n got %v\nwant %v", flags, v.flags)
			}
			for name := range flags {
				if !defined[name] {
					t.Errorf("--%s: cmd/certbind/serve.go defines no such flag", name)
				}
			}

			// Ports: every listener has its named container port, and nothing else does.
			named := map[string]int32{}
			for _, p := range c.Ports {
				if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
					t.Errorf("port name %q: %v", p.Name, errs)
				}
				if p.Protocol != corev1.ProtocolTCP || p.HostPort != 0 {
					t.Errorf("port %s: protocol %q hostPort %d", p.Name, p.Protocol, p.HostPort)
				}
				named[p.Name] = p.ContainerPort
			}
			listeners := map[string]string{"grpc": "grpc-addr", "http": "http-addr", "admin": "admin-addr"}
			for name, flag := range listeners {
				addr, on := flags[flag]
				switch {
				case on && named[name] != deploytest.PortOf(t, addr):
					t.Errorf("container port %s = %d, --%s listens on %s", name, named[name], flag, addr)
				case !on && named[name] != 0:
					t.Errorf("container port %s = %d without --%s", name, named[name], flag)
				}
			}
			if len(named) != len(c.Ports) {
				t.Errorf("ports %v: a name twice", c.Ports)
			}

			// Probes: those of deploy/kubernetes, HTTP GETs on the admin listener.
			admin := deploytest.PortOf(t, flags["admin-addr"])
			for _, p := range []struct {
				name        string
				probe, want *corev1.Probe
				path        string
			}{
				{"startupProbe", c.StartupProbe, kc.StartupProbe, "/healthz"},
				{"livenessProbe", c.LivenessProbe, kc.LivenessProbe, "/healthz"},
				{"readinessProbe", c.ReadinessProbe, kc.ReadinessProbe, "/readyz"},
			} {
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
				if !apiequality.Semantic.DeepEqual(p.probe, p.want) {
					t.Errorf("%s: %+v, want deploy/kubernetes' %+v", p.name, p.probe, p.want)
				}
			}

			// Shutdown: the preStop sleep plus certbind's drain (--drain-timeout, default 10s)
			// fit the grace period.
			if ps.TerminationGracePeriodSeconds == nil {
				t.Fatal("terminationGracePeriodSeconds unset")
			}
			if _, ok := flags["drain-timeout"]; ok {
				t.Fatal("--drain-timeout: teach this test to parse it")
			}
			var preStop int64
			if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
				preStop = c.Lifecycle.PreStop.Sleep.Seconds
			}
			if preStop+10 >= *ps.TerminationGracePeriodSeconds {
				t.Errorf("preStop %ds + drain 10s do not fit in %ds", preStop, *ps.TerminationGracePeriodSeconds)
			}
			// The environment: deploy/kubernetes' (tracing's service name) by default, else the
			// values' list as it is.
			wantEnv := kc.Env
			if v.vals != nil && v.vals["env"] != nil {
				wantEnv = nil
				if err := remarshal(v.vals["env"], &wantEnv); err != nil {
					t.Fatal(err)
				}
			}
			if !apiequality.Semantic.DeepEqual(c.Env, wantEnv) || len(c.Env) == 0 {
				t.Errorf("env %+v, want %+v", c.Env, wantEnv)
			}

			if v.vals == nil {
				if *ps.TerminationGracePeriodSeconds != *k.Spec.Template.Spec.TerminationGracePeriodSeconds ||
					!apiequality.Semantic.DeepEqual(c.Lifecycle, kc.Lifecycle) {
					t.Errorf("grace period %d, lifecycle %+v: want deploy/kubernetes' %d and %+v", *ps.TerminationGracePeriodSeconds,
						c.Lifecycle, *k.Spec.Template.Spec.TerminationGracePeriodSeconds, kc.Lifecycle)
				}
				// Resources: deploy/kubernetes' values, chosen from measured memory.
				if !apiequality.Semantic.DeepEqual(c.Resources, kc.Resources) {
					t.Errorf("resources %+v, want deploy/kubernetes' %+v", c.Resources, kc.Resources)
				}
				// Anti-affinity: preferred, per node, on the pod's own labels.
				aa := (*corev1.PodAntiAffinity)(nil)
				if ps.Affinity != nil {
					aa = ps.Affinity.PodAntiAffinity
				}
				if aa == nil || len(aa.PreferredDuringSchedulingIgnoredDuringExecution) != 1 || len(aa.RequiredDuringSchedulingIgnoredDuringExecution) != 0 {
					t.Fatal("want exactly one preferred (and no required) pod anti-affinity term by default")
				}
				term := aa.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
				if term.TopologyKey != corev1.LabelHostname {
					t.Errorf("anti-affinity topologyKey %q, want %q", term.TopologyKey, corev1.LabelHostname)
				}
				if s, err := metav1.LabelSelectorAsSelector(term.LabelSelector); err != nil || s.Empty() || !s.Matches(labels.Set(d.Spec.Template.Labels)) {
					t.Errorf("anti-affinity selector %v does not select certbind's pods", term.LabelSelector)
				}
				if d.Spec.Template.Labels["sidecar.istio.io/inject"] != "false" {
					t.Error(`pod label sidecar.istio.io/inject: "false" missing`)
				}
			}

			// No checksum of the configuration on the pod template: certbind reloads it, and a
			// rollout per ConfigMap change would stall on an invalid one instead of keeping the
			// previous configuration in force.
			for a := range d.Spec.Template.Annotations {
				if strings.HasPrefix(a, "checksum/") {
					t.Errorf("pod annotation %s: certbind hot-reloads its configuration, see README", a)
				}
			}

			// Service account: no token, on the pod and on the ServiceAccount the chart creates.
			sa := only[*corev1.ServiceAccount](t, all)
			if ps.ServiceAccountName != sa.Name || sa.Namespace != d.Namespace {
				t.Errorf("serviceAccountName %q, ServiceAccount %s/%s", ps.ServiceAccountName, sa.Namespace, sa.Name)
			}
			if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken ||
				sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
				t.Error("automountServiceAccountToken must be false on the pod and the ServiceAccount")
			}
		})
	}
}

func TestDeploymentSecurityContext(t *testing.T) {
	k := kustomizeDeployment(t)
	kc := deploytest.CertbindContainer(t, k)
	for _, v := range variants(t) {
		t.Run(v.name, func(t *testing.T) {
			all := render(t, v.vals)
			d := only[*appsv1.Deployment](t, all)
			deploytest.RestrictedPod(t, d)
			ps := d.Spec.Template.Spec
			sc := deploytest.CertbindContainer(t, d).SecurityContext
			// And exactly deploy/kubernetes' settings, which meet the restricted Pod Security
			// Standard its Namespace enforces.
			if !apiequality.Semantic.DeepEqual(sc, kc.SecurityContext) {
				t.Errorf("container securityContext %+v, want deploy/kubernetes' %+v", sc, kc.SecurityContext)
			}
			if !apiequality.Semantic.DeepEqual(ps.SecurityContext, k.Spec.Template.Spec.SecurityContext) {
				t.Errorf("pod securityContext %+v, want deploy/kubernetes' %+v", ps.SecurityContext, k.Spec.Template.Spec.SecurityContext)
			}
		})
	}
}

// TestDeploymentVolumes: the files the command line and certbind.yaml name are where the volumes
// put them, each volume a whole directory (never subPath, so the kubelet's atomic symlink swap
// reaches certbind), backed by the ConfigMap and Secrets the values name.
func TestDeploymentVolumes(t *testing.T) {
	for _, v := range variants(t) {
		t.Run(v.name, func(t *testing.T) {
			all := render(t, v.vals)
			d := only[*appsv1.Deployment](t, all)
			ps := d.Spec.Template.Spec
			c := deploytest.CertbindContainer(t, d)
			flags := deploytest.ServeArgs(t, c.Args)
			full := d.Name

			volumes := map[string]corev1.Volume{}
			for _, vol := range ps.Volumes {
				volumes[vol.Name] = vol
			}
			mounts := map[string]corev1.Volume{} // mount path -> volume
			for _, m := range c.VolumeMounts {
				vol, ok := volumes[m.Name]
				if !ok {
					t.Fatalf("volumeMount %s: no such volume", m.Name)
				}
				if !m.ReadOnly {
					t.Errorf("volumeMount %s: not readOnly", m.Name)
				}
				if m.SubPath != "" || m.SubPathExpr != "" {
					t.Errorf("volumeMount %s: subPath mounts never receive updates, and certbind reloads on them", m.Name)
				}
				mounts[m.MountPath] = vol
			}
			if len(mounts) != len(volumes) || len(mounts) != len(c.VolumeMounts) {
				t.Errorf("%d volumes, %d mount paths, %d mounts", len(volumes), len(mounts), len(c.VolumeMounts))
			}

			// The configuration: the chart's ConfigMap, or the existing one named.
			configDir := path.Dir(flags["config"])
			wantCM := full + "-config"
			if name := valueAt(v.vals, "config", "existingConfigMap"); name != "" {
				wantCM = name
				if len(objects[*corev1.ConfigMap](all)) != 0 {
					t.Errorf("config.existingConfigMap %s: the chart must not create a ConfigMap", name)
				}
			} else {
				cm := configMap(t, all, wantCM)
				if _, ok := cm.Data[path.Base(flags["config"])]; !ok {
					t.Errorf("ConfigMap %s has no key %s", cm.Name, path.Base(flags["config"]))
				}
			}
			if vol := mounts[configDir]; vol.ConfigMap == nil || vol.ConfigMap.Name != wantCM {
				t.Errorf("%s: want ConfigMap %s mounted there", configDir, wantCM)
			}

			// certbind's TLS: a kubernetes.io/tls Secret (cert-manager's layout).
			wantTLS := orDefault(valueAt(v.vals, "tls", "secret", "name"), full+"-tls")
			if _, on := flags["tls-cert"]; on {
				for _, flag := range []string{"tls-cert", "tls-key", "tls-client-ca"} {
					vol := mounts[path.Dir(flags[flag])]
					if vol.Secret == nil || vol.Secret.SecretName != wantTLS {
						t.Errorf("--%s=%s: want Secret %s mounted at %s", flag, flags[flag], wantTLS, path.Dir(flags[flag]))
					}
				}
				if got := []string{path.Base(flags["tls-cert"]), path.Base(flags["tls-key"]), path.Base(flags["tls-client-ca"])}; !slices.Equal(got, []string{"tls.crt", "tls.key", "ca.crt"}) {
					t.Errorf("TLS file names %v: want the kubernetes.io/tls keys tls.crt, tls.key and ca.crt", got)
				}
			} else if _, ok := volumes["tls"]; ok {
				t.Error("a tls volume without --tls-cert")
			}
			for _, s := range objects[*corev1.Secret](all) {
				if s.Type == corev1.SecretTypeTLS {
					if s.Name != wantTLS {
						t.Errorf("TLS Secret %s, the pod mounts %s", s.Name, wantTLS)
					}
					for _, key := range []string{"tls.crt", "tls.key", "ca.crt"} {
						if len(s.Data[key]) == 0 {
							t.Errorf("Secret %s: %s empty", s.Name, key)
						}
					}
				}
			}

			// The PKI: at pki/ beside certbind.yaml, where its relative paths point.
			wantPKI := orDefault(valueAt(v.vals, "pki", "secret", "name"), full+"-pki")
			if vol := mounts[path.Join(configDir, "pki")]; vol.Secret == nil || vol.Secret.SecretName != wantPKI {
				t.Errorf("%s: want Secret %s mounted there", path.Join(configDir, "pki"), wantPKI)
			}

			// Secrets: group-readable by the pod's fsGroup only, and required.
			psc := ps.SecurityContext
			if psc == nil || psc.FSGroup == nil || *psc.FSGroup != 65532 {
				t.Error("fsGroup must be 65532 so the nonroot user can read 0440 secret files")
			}
			for _, vol := range ps.Volumes {
				if vol.Secret == nil {
					continue
				}
				if vol.Secret.DefaultMode == nil || *vol.Secret.DefaultMode != 0o440 {
					t.Errorf("volume %s: defaultMode %v, want 0440", vol.Name, deref(vol.Secret.DefaultMode))
				}
				if vol.Secret.Optional != nil && *vol.Secret.Optional {
					t.Errorf("volume %s: a missing Secret must keep the pod from starting", vol.Name)
				}
			}
		})
	}
}

// valueAt reads a string from user values; "" when absent.
func valueAt(vals map[string]any, keys ...string) string {
	var cur any = vals
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[k]
	}
	s, _ := cur.(string)
	return s
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func configMap(t *testing.T, all []manifest, name string) *corev1.ConfigMap {
	t.Helper()
	for _, cm := range objects[*corev1.ConfigMap](all) {
		if cm.Name == name {
			return cm
		}
	}
	t.Fatalf("no ConfigMap %s", name)
	return nil
}

// clientPKI is what the PKI Secret holds for the README's example configuration: a generated
// client CA (ca.pem) and the partner's pinned self-signed certificate (partner.jwks.json).
func clientPKI(t *testing.T) (*pki.Cert, map[string]string) {
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
	return ca, map[string]string{"ca.pem": string(ca.PEM()), "partner.jwks.json": string(jwks)}
}

// The default certbind.yaml loads with policy.ParseConfig from a directory laid out as the pod's
// /etc/certbind: the rendered ConfigMap's key, and the rendered PKI Secret's files under pki/.
func TestConfigMapLoadsWithParseConfig(t *testing.T) {
	ca, files := clientPKI(t)
	filesYAML, err := yaml.Marshal(map[string]any{"pki": map[string]any{"secret": map[string]any{"create": true, "files": files}}})
	if err != nil {
		t.Fatal(err)
	}
	all := render(t, mergeValues(t, nil, string(filesYAML)))
	d := only[*appsv1.Deployment](t, all)
	c := deploytest.CertbindContainer(t, d)
	flags := deploytest.ServeArgs(t, c.Args)
	cm := configMap(t, all, d.Name+"-config")
	data, ok := cm.Data[path.Base(flags["config"])]
	if !ok {
		t.Fatalf("ConfigMap %s has no %s", cm.Name, path.Base(flags["config"]))
	}

	// Lay out the mounts: the ConfigMap's keys, and each Secret at its mount path.
	dir := t.TempDir()
	configDir := path.Dir(flags["config"])
	secrets := map[string]*corev1.Secret{}
	for _, s := range objects[*corev1.Secret](all) {
		secrets[s.Name] = s
	}
	volumes := map[string]corev1.Volume{}
	for _, vol := range d.Spec.Template.Spec.Volumes {
		volumes[vol.Name] = vol
	}
	for _, m := range c.VolumeMounts {
		rel, err := filepath.Rel(configDir, m.MountPath)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		target := filepath.Join(dir, rel)
		if err := os.MkdirAll(target, 0o700); err != nil {
			t.Fatal(err)
		}
		vol := volumes[m.Name]
		switch {
		case vol.ConfigMap != nil && vol.ConfigMap.Name == cm.Name:
			for k, v := range cm.Data {
				writeFile(t, filepath.Join(target, k), []byte(v))
			}
		case vol.Secret != nil && secrets[vol.Secret.SecretName] != nil:
			for k, v := range secrets[vol.Secret.SecretName].Data {
				writeFile(t, filepath.Join(target, k), v)
			}
		}
	}

	cfg, err := policy.ParseConfig([]byte(data), dir, policy.LoadOptions{})
	if err != nil {
		t.Fatalf("certbind.yaml does not load: %v", err)
	}
	if anchors := cfg.TrustAnchors(); len(anchors) != 1 || !anchors[0].Equal(ca.Cert) {
		t.Errorf("trust anchors %d, want the generated CA from the PKI Secret only", len(anchors))
	}
	var ids []string
	for _, cl := range cfg.Clients() {
		ids = append(ids, cl.ID)
	}
	if !slices.Equal(ids, []string{"billing", "reports", "partner"}) {
		t.Errorf("clients %v, want the README example's billing, reports, partner", ids)
	}
	// Every file the configuration reads is in the PKI Secret's mount.
	if len(cfg.Files()) == 0 {
		t.Error("the configuration read no files")
	}
	for _, f := range cfg.Files() {
		rel, err := filepath.Rel(filepath.Join(dir, "pki"), f)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("the configuration reads %s, outside pki/ (the PKI Secret)", f)
		}
	}

	// Without the Secret's files the configuration must not load: the test above used them.
	if _, err := policy.ParseConfig([]byte(data), t.TempDir(), policy.LoadOptions{}); err == nil || !strings.Contains(err.Error(), "trust_anchors") {
		t.Errorf("without pki/ca.pem: error %v, want one naming trust_anchors", err)
	}
	// The chart passes the configuration through as written: a key certbind does not know
	// reaches certbind, whose strict loader refuses it.
	bad := mergeValues(t, nil, "config:\n  certbindYaml: |\n    trust_anchors: [pki/ca.pem]\n    unknown_key: true\n")
	badCM := configMap(t, render(t, bad), d.Name+"-config")
	if _, err := policy.ParseConfig([]byte(badCM.Data["certbind.yaml"]), dir, policy.LoadOptions{}); err == nil || !strings.Contains(err.Error(), "unknown_key") {
		t.Errorf("certbind.yaml with unknown_key: error %v, want one naming it", err)
	}
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestServiceAndDisruptionBudget(t *testing.T) {
	for _, v := range variants(t) {
		t.Run(v.name, func(t *testing.T) {
			all := render(t, v.vals)
			d := only[*appsv1.Deployment](t, all)
			c := deploytest.CertbindContainer(t, d)
			flags := deploytest.ServeArgs(t, c.Args)
			podLabels := labels.Set(d.Spec.Template.Labels)

			svc := only[*corev1.Service](t, all)
			if svc.Spec.Type != corev1.ServiceTypeClusterIP {
				t.Errorf("Service type %q, want ClusterIP", svc.Spec.Type)
			}
			if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
				t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, podLabels)
			}
			_, tls := flags["tls-cert"]
			type port struct {
				name, flag, appProtocol string
			}
			want := []port{{"grpc", "grpc-addr", "grpc"}}
			if _, on := flags["http-addr"]; on {
				want = append(want, port{"http", "http-addr", map[bool]string{true: "https", false: "http"}[tls]})
			}
			want = append(want, port{"metrics", "admin-addr", "http"})
			if len(svc.Spec.Ports) != len(want) {
				t.Fatalf("Service ports %d, want %d", len(svc.Spec.Ports), len(want))
			}
			for i, w := range want {
				p := svc.Spec.Ports[i]
				ap := ""
				if p.AppProtocol != nil {
					ap = *p.AppProtocol
				}
				if p.Name != w.name || ap != w.appProtocol || p.Protocol != corev1.ProtocolTCP {
					t.Errorf("Service port %d: %s appProtocol %q, want %s appProtocol %q", i, p.Name, ap, w.name, w.appProtocol)
				}
				listen := deploytest.PortOf(t, flags[w.flag])
				if got := deploytest.ContainerPort(t, c, p.TargetPort); got != listen || p.Port != listen {
					t.Errorf("Service port %s: port %d targetPort %s (container port %d), --%s listens on %d", p.Name, p.Port, p.TargetPort.String(), got, w.flag, listen)
				}
			}

			pdb := only[*policyv1.PodDisruptionBudget](t, all)
			one := intstr.FromInt32(1)
			minOne := pdb.Spec.MinAvailable != nil && *pdb.Spec.MinAvailable == one && pdb.Spec.MaxUnavailable == nil
			maxOne := pdb.Spec.MaxUnavailable != nil && *pdb.Spec.MaxUnavailable == one && pdb.Spec.MinAvailable == nil
			if !minOne && !maxOne {
				t.Errorf("PodDisruptionBudget: minAvailable %v maxUnavailable %v, want one of them 1", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
			}
			if v.vals == nil && !minOne {
				t.Error("PodDisruptionBudget: want minAvailable 1 by default, as deploy/kubernetes")
			}
			if s, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || s.Empty() || !s.Matches(podLabels) {
				t.Errorf("PodDisruptionBudget selector %v does not select the pods", pdb.Spec.Selector)
			}
			if pdb.Spec.UnhealthyPodEvictionPolicy == nil || *pdb.Spec.UnhealthyPodEvictionPolicy != policyv1.AlwaysAllow {
				t.Error("unhealthyPodEvictionPolicy: a pod waiting for a fixed configuration must not block a drain")
			}
			// minAvailable 1 needs a second replica, or every drain blocks.
			least := int32(0)
			if d.Spec.Replicas != nil {
				least = *d.Spec.Replicas
			}
			for _, h := range objects[*autoscalingv2.HorizontalPodAutoscaler](all) {
				least = *h.Spec.MinReplicas
			}
			if minOne && least < 2 {
				t.Errorf("minAvailable 1 with at least %d replicas blocks every drain", least)
			}
		})
	}
}

func TestAutoscaler(t *testing.T) {
	all := render(t, readValues(t, allOnValues))
	d := only[*appsv1.Deployment](t, all)
	h := only[*autoscalingv2.HorizontalPodAutoscaler](t, all)
	ref := h.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
		t.Errorf("scaleTargetRef %+v, want the Deployment %s", ref, d.Name)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas != 3 || h.Spec.MaxReplicas != 10 {
		t.Errorf("replicas %v..%d, want 3..10 from %s", deref(h.Spec.MinReplicas), h.Spec.MaxReplicas, allOnValues)
	}
	if len(h.Spec.Metrics) != 1 {
		t.Fatalf("metrics %+v, want CPU only", h.Spec.Metrics)
	}
	m := h.Spec.Metrics[0]
	if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource == nil || m.Resource.Name != corev1.ResourceCPU ||
		m.Resource.Target.Type != autoscalingv2.UtilizationMetricType || deref(m.Resource.Target.AverageUtilization) != any(int32(60)) {
		t.Errorf("metric %+v, want CPU utilization 60%%", m)
	}
	// Utilization is a share of the request: the container must request CPU.
	if c := deploytest.CertbindContainer(t, d); c.Resources.Requests.Cpu().IsZero() {
		t.Error("CPU utilization target without a CPU request")
	}
}

func TestNetworkPolicy(t *testing.T) {
	vals := readValues(t, allOnValues)
	all := render(t, vals)
	d := only[*appsv1.Deployment](t, all)
	c := deploytest.CertbindContainer(t, d)
	np := only[*networkingv1.NetworkPolicy](t, all)

	if s, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil || s.Empty() || !s.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("podSelector %v does not select certbind's pods", np.Spec.PodSelector)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
		t.Errorf("policyTypes %v, want Ingress and Egress", np.Spec.PolicyTypes)
	}

	// Ingress: the authorization ports from authzFrom, the admin port from metricsFrom, and
	// nothing from anyone else (a rule without "from" admits every source).
	var authzFrom, metricsFrom []networkingv1.NetworkPolicyPeer
	if err := remarshal(vals["networkPolicy"].(map[string]any)["authzFrom"], &authzFrom); err != nil {
		t.Fatal(err)
	}
	if err := remarshal(vals["networkPolicy"].(map[string]any)["metricsFrom"], &metricsFrom); err != nil {
		t.Fatal(err)
	}
	admitted := map[int32][]networkingv1.NetworkPolicyPeer{}
	for i, r := range np.Spec.Ingress {
		if len(r.From) == 0 {
			t.Errorf("ingress rule %d admits every source", i)
		}
		if len(r.Ports) == 0 {
			t.Errorf("ingress rule %d admits every port", i)
		}
		for _, p := range r.Ports {
			if p.Port == nil || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) {
				t.Errorf("ingress rule %d: port %+v", i, p)
				continue
			}
			n := deploytest.ContainerPort(t, c, *p.Port)
			admitted[n] = append(admitted[n], r.From...)
		}
	}
	flags := deploytest.ServeArgs(t, c.Args)
	for flag, want := range map[string][]networkingv1.NetworkPolicyPeer{"grpc-addr": authzFrom, "http-addr": authzFrom, "admin-addr": metricsFrom} {
		port := deploytest.PortOf(t, flags[flag])
		if !apiequality.Semantic.DeepEqual(admitted[port], want) {
			t.Errorf("--%s (port %d): admitted %+v, want %+v", flag, port, admitted[port], want)
		}
	}

	// Egress: DNS (UDP and TCP 53) and the configured rules, nothing else.
	if len(np.Spec.Egress) != 2 {
		t.Fatalf("egress rules %d, want DNS and the one of %s", len(np.Spec.Egress), allOnValues)
	}
	dns := np.Spec.Egress[0]
	var protos []string
	for _, p := range dns.Ports {
		if p.Port == nil || p.Port.IntValue() != 53 || p.Protocol == nil {
			t.Errorf("DNS rule port %+v", p)
			continue
		}
		protos = append(protos, string(*p.Protocol))
	}
	if !slices.Equal(protos, []string{"UDP", "TCP"}) || len(dns.To) == 0 {
		t.Errorf("DNS rule %+v: want UDP and TCP 53 to the DNS peers", dns)
	}
	var rules []networkingv1.NetworkPolicyEgressRule
	if err := remarshal(vals["networkPolicy"].(map[string]any)["egress"].(map[string]any)["rules"], &rules); err != nil {
		t.Fatal(err)
	}
	if !apiequality.Semantic.DeepEqual(np.Spec.Egress[1:], rules) {
		t.Errorf("egress %+v, want %+v", np.Spec.Egress[1:], rules)
	}

	// Enabled with empty lists: no one is admitted, and egress stays open unless restricted.
	closed := render(t, mergeValues(t, nil, "networkPolicy:\n  enabled: true\n"))
	np = only[*networkingv1.NetworkPolicy](t, closed)
	if len(np.Spec.Ingress) != 0 || !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("empty peer lists: ingress %+v policyTypes %v, want no rule (no one admitted) and egress open", np.Spec.Ingress, np.Spec.PolicyTypes)
	}
	// Off by default.
	if n := len(objects[*networkingv1.NetworkPolicy](render(t, nil))); n != 0 {
		t.Errorf("%d NetworkPolicies by default, want none", n)
	}
}

func remarshal(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return kubedoc.DecodeJSONStrict(b, out)
}

func TestServiceMonitor(t *testing.T) {
	all := render(t, readValues(t, allOnValues))
	svc := only[*corev1.Service](t, all)
	d := only[*appsv1.Deployment](t, all)
	c := deploytest.CertbindContainer(t, d)
	sm := only[*monitoringv1.ServiceMonitor](t, all)

	if s, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector); err != nil || s.Empty() || !s.Matches(labels.Set(svc.Labels)) {
		t.Errorf("selector %v does not select the Service's labels %v", sm.Spec.Selector, svc.Labels)
	}
	if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{svc.Namespace}) || sm.Spec.NamespaceSelector.Any {
		t.Errorf("namespaceSelector %+v, want the Service's namespace %s", sm.Spec.NamespaceSelector, svc.Namespace)
	}
	if sm.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("labels %v: serviceMonitor.labels missing", sm.Labels)
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("endpoints %d, want 1", len(sm.Spec.Endpoints))
	}
	ep := sm.Spec.Endpoints[0]
	if ep.Path != "/metrics" || (ep.Scheme != nil && ep.Scheme.String() != "http") {
		t.Errorf("endpoint path %q scheme %v, want /metrics over http", ep.Path, deref(ep.Scheme))
	}
	if ep.Interval != "15s" || ep.ScrapeTimeout != "10s" {
		t.Errorf("interval %q scrapeTimeout %q, want 15s and 10s from %s", ep.Interval, ep.ScrapeTimeout, allOnValues)
	}
	// The endpoint's port is the Service port whose target is the admin listener.
	var target *intstr.IntOrString
	for _, p := range svc.Spec.Ports {
		if p.Name == ep.Port {
			target = &p.TargetPort
		}
	}
	if target == nil {
		t.Fatalf("endpoint port %q: not a port of Service %s", ep.Port, svc.Name)
	}
	if got, want := deploytest.ContainerPort(t, c, *target), deploytest.PortOf(t, deploytest.ServeArgs(t, c.Args)["admin-addr"]); got != want {
		t.Errorf("endpoint port %q reaches container port %d, want the admin listener %d", ep.Port, got, want)
	}
}

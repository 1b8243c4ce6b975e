package compose

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/certbind/certbind/envoy"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/testbed"
)

var repoRoot = func() string {
	abs, err := filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	return abs
}()

func loadProject(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(repoRoot, "docker-compose.yml")},
		cli.WithWorkingDirectory(repoRoot), cli.WithProfiles([]string{"test"}),
		cli.WithEnv([]string{}), cli.WithConsistency(true), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not validate: %v", err)
	}
	return p
}

func TestComposeFileValidates(t *testing.T) {
	p := loadProject(t)
	want := []string{"api", "as", "certbind", "client", "envoy", "envoy-self-signed", "pki"}
	if got := p.ServiceNames(); !slices.Equal(sorted(got), want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	for _, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes port %d on %q: the test bed listens on localhost only", s.Name, port.Target, port.HostIP)
			}
		}
		if s.Image != "" && !strings.Contains(s.Image, ":") {
			t.Errorf("%s: image %q has no pinned tag", s.Name, s.Image)
		}
		if strings.HasSuffix(s.Image, ":latest") {
			t.Errorf("%s: image %q uses latest", s.Name, s.Image)
		}
	}
}

func TestComposeMountsExist(t *testing.T) {
	p := loadProject(t)
	binds := 0
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s: volume %q is not declared", s.Name, v.Source)
				}
				continue
			}
			binds++
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s: %v", s.Name, v.Source, err)
			}
			if !v.ReadOnly {
				t.Errorf("%s mounts %s read-write", s.Name, v.Source)
			}
		}
	}
	if binds < 4 {
		t.Fatalf("only %d bind mounts found: the walk is broken", binds)
	}
}

// mounted returns the host path bind-mounted at target in service svc.
func mounted(t *testing.T, p *types.Project, svc, target string) string {
	t.Helper()
	s, err := p.GetService(svc)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range s.Volumes {
		if v.Target == target {
			return v.Source
		}
	}
	t.Fatalf("%s mounts nothing at %s", svc, target)
	return ""
}

func TestComposeEnvoyConfigsLint(t *testing.T) {
	p := loadProject(t)
	for _, svc := range []string{"envoy", "envoy-self-signed"} {
		path := mounted(t, p, svc, "/etc/envoy/envoy.yaml")
		b, err := envoy.LoadFile(path)
		if err != nil {
			t.Fatalf("%s: %s: %v", svc, path, err)
		}
		for _, f := range envoy.Lint(b, envoy.LintOptions{XFCCElements: "single"}) {
			if f.Severity == envoy.SeverityError {
				t.Errorf("%s: %s: %s: %s", svc, path, f.Path, f.Message)
			}
		}
	}
}

func TestComposeCertbindConfigLoads(t *testing.T) {
	p := loadProject(t)
	cfgPath := mounted(t, p, "certbind", "/etc/certbind/certbind.yaml")
	dir := t.TempDir()
	if err := testbed.GeneratePKI(filepath.Join(dir, "pki"), time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "certbind.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := policy.LoadConfig(filepath.Join(dir, "certbind.yaml"), policy.LoadOptions{})
	if err != nil {
		t.Fatalf("%s does not load against the generated PKI: %v", cfgPath, err)
	}
	if len(cfg.Clients()) == 0 {
		t.Fatal("no clients")
	}
	// The certificate files certbind's command line names are in the PKI layout.
	s, _ := p.GetService("certbind")
	for _, arg := range s.Command {
		if _, v, ok := strings.Cut(arg, "=/etc/certbind/pki/"); ok {
			if _, err := os.Stat(filepath.Join(dir, "pki", v)); err != nil {
				t.Errorf("certbind %s: %v", arg, err)
			}
		}
	}
}

func TestDockerfileTargets(t *testing.T) {
	p := loadProject(t)
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?mi)^FROM\s+\S+\s+AS\s+(\S+)`).FindAllStringSubmatch(string(data), -1) {
		stages[m[1]] = true
	}
	for _, s := range p.Services {
		if s.Build != nil && !stages[s.Build.Target] {
			t.Errorf("%s builds target %q, which the Dockerfile lacks (stages %v)", s.Name, s.Build.Target, stages)
		}
	}
	if !regexp.MustCompile(`(?m)^USER\s+65532`).Match(data) {
		t.Error("Dockerfile images must run as a non-root user")
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

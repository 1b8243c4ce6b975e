package metrics_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/certbind/certbind/extauthz/metrics"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/pki"
)

func TestMetrics(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	root := pki.NewRoot("Metrics Root", pki.Validity(now.Add(-time.Hour), now.Add(10*24*time.Hour)))
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ca.pem"), root.PEM(), 0o644)
	os.WriteFile(filepath.Join(dir, "ca.crl"), root.CRLPEM(now.Add(-time.Hour), now.Add(36*time.Hour)), 0o644)
	cfg, err := policy.ParseConfig([]byte("trust_anchors: [ca.pem]\ncrl_files: [ca.crl]\n"), dir, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clock := now
	m := metrics.NewWithClock(func() time.Time { return clock })
	m.ObserveReload(cfg, nil, now)
	m.ObserveReload(nil, errors.New("broken"), now)
	leaf := root.Leaf("c", pki.Validity(now.Add(-time.Hour), now.Add(5*24*time.Hour)))
	p, err := policy.ParsePresented(leaf.DER(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveDecision(policy.Decision{Allow: true, Reason: policy.ReasonOK, Mode: policy.ModeIdentity, ClientID: "c", Certificate: p}, time.Millisecond, now)
	m.ObserveDecision(policy.Decision{Reason: policy.ReasonNoPolicy}, time.Millisecond, now)
	m.ObserveFetch("jwks", nil)
	m.ObserveFetch("ocsp", errors.New("down"))
	m.ObserveCache("chains", "hit")

	for _, tc := range []struct{ name, want string }{
		{"certbind_decisions_total", `certbind_decisions_total{mode="identity",reason="ok",result="allow"} 1`},
		{"certbind_decisions_total", `certbind_decisions_total{mode="none",reason="no_policy",result="deny"} 1`},
		{"certbind_config_reloads_total", `certbind_config_reloads_total{result="failure"} 1`},
		{"certbind_config_last_reload_success_timestamp_seconds", "certbind_config_last_reload_success_timestamp_seconds 1.7953488e+09"},
		{"certbind_trust_anchor_expiry_days", `subject="CN=Metrics Root"`},
		{"certbind_crl_next_update_days", `certbind_crl_next_update_days{issuer="CN=Metrics Root"`},
		{"certbind_fetches_total", `certbind_fetches_total{kind="ocsp",result="error"} 1`},
		{"certbind_cache_events_total", `certbind_cache_events_total{cache="chains",event="hit"} 1`},
		{"certbind_client_certificate_expiry_days", "certbind_client_certificate_expiry_days_bucket{le=\"7\"} 1"},
	} {
		got, err := testutil.CollectAndFormat(m.Registry, expfmt.TypeTextPlain, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(got), tc.want) {
			t.Errorf("%s lacks %s:\n%s", tc.name, tc.want, got)
		}
	}
	// The anchor gauge reads days to expiry: about 10.
	got, _ := testutil.CollectAndFormat(m.Registry, expfmt.TypeTextPlain, "certbind_trust_anchor_expiry_days")
	if !strings.Contains(string(got), "} 10") {
		t.Errorf("anchor expiry: %s", got)
	}
	// The gauges count down between reloads: five days on, without a reload, about 5 and -3.5.
	clock = now.Add(5 * 24 * time.Hour)
	for name, want := range map[string]string{"certbind_trust_anchor_expiry_days": "} 5\n", "certbind_crl_next_update_days": "} -3.5\n"} {
		got, _ := testutil.CollectAndFormat(m.Registry, expfmt.TypeTextPlain, name)
		if !strings.Contains(string(got), want) {
			t.Errorf("%s five days later, want %q:\n%s", name, want, got)
		}
	}
	// No label carries a client_id or a certificate: only enumerations and configured names.
	all, _ := testutil.CollectAndFormat(m.Registry, expfmt.TypeTextPlain, "certbind_decisions_total", "certbind_decision_duration_seconds", "certbind_client_certificate_expiry_days")
	if strings.Contains(string(all), `"c"`) || strings.Contains(string(all), "client_id") {
		t.Errorf("a client-controlled value became a label:\n%s", all)
	}
}

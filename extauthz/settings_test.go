package extauthz

import (
	"testing"

	"github.com/certbind/certbind/extauthz/xfcc"
	"github.com/certbind/certbind/policy"
)

// TestAdapterSettingsPerGeneration: the adapter compiles a configuration's settings once, keeps
// them while it is in force, and compiles anew for the next one.
func TestAdapterSettingsPerGeneration(t *testing.T) {
	load := func(doc string) *policy.Config {
		t.Helper()
		cfg, err := policy.ParseConfig([]byte(doc), t.TempDir(), policy.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	single := load("xfcc: {max_header_bytes: 1000, max_chain_length: 3}\n")
	last := load("xfcc: {elements: last, trusted_proxies: [spiffe://example.org/envoy]}\n")
	var ac adapterConfigs
	a := ac.forConfig(single)
	if ac.forConfig(single) != a {
		t.Fatal("a second request compiled the settings again")
	}
	if a.set.elements != xfcc.PolicySingle || a.set.limits.MaxHeaderBytes != 1000 || a.set.limits.MaxChainCerts != 3 || a.certs == nil {
		t.Errorf("single: %+v", a.set)
	}
	b := ac.forConfig(last)
	if b == a || b.set.elements != xfcc.PolicyLast || len(b.set.trusted) != 1 || b.certs == a.certs {
		t.Errorf("after a reload: %+v, certificate cache %v", b.set, b.certs)
	}
}

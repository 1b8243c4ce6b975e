package policy_test

import (
	"errors"
	"testing"

	"github.com/certbind/certbind/policy"
)

// FuzzParseConfig feeds arbitrary documents to the configuration loader. Invariants: no panic;
// a rejection is a *ConfigError whose every problem names something; an accepted document
// compiles into a usable configuration.
func FuzzParseConfig(f *testing.F) {
	w := newWorld(f)
	for _, seed := range []string{
		exampleConfig,
		tokenConfig("jwks_file: pki/partner.jwks.json", "optional"),
		"xfcc: {elements: last, trusted_proxies: [spiffe://x]}\nrevocation: {mode: ocsp_then_crl, failure: soft}\n",
		"http_authz: {certificate_format: rfc9440}\ncache: {certificates: 1, ttl: 1s}\n",
		"clients:\n  - {client_id: a, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: 'CN=a+OU=b,O=c'}\n",
		"routes: [{path_prefix: /api/, mode: bound_token, scopes: [a], binding: optional}]\n",
		"{{{", "- a\n- b\n", "trust_anchors: &a [pki/ca.pem]\nintermediates: *a\n", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		cfg, err := policy.ParseConfig([]byte(doc), w.dir, policy.LoadOptions{})
		if err != nil {
			var ce *policy.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *ConfigError: %v", err, err)
			}
			for _, e := range ce.Unwrap() {
				if e == nil || e.Error() == "" {
					t.Fatalf("empty problem in %v", err)
				}
			}
			return
		}
		if cfg.Generation() == 0 || cfg.XFCC.MaxHeaderBytes <= 0 || cfg.XFCC.MaxChainLength <= 0 {
			t.Fatalf("accepted a configuration without its defaults: %+v", cfg.XFCC)
		}
		for _, cl := range cfg.Clients() {
			if cl.ID == "" {
				t.Fatal("accepted a client without client_id")
			}
		}
	})
}

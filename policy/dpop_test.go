package policy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/policy/dpop"
	"github.com/certbind/certbind/testenv/dpoptest"
	redisenv "github.com/certbind/certbind/testenv/redis"
)

const dpopURI = "https://api.example.org/api/things"

// holder is a DPoP client whose proofs are for a GET of dpopURI at t0.
type holder struct {
	*dpoptest.Holder
	jkt string
}

func newHolder(t testing.TB) *holder {
	h := dpoptest.New(t)
	return &holder{Holder: h, jkt: h.JKT}
}

// claims are a valid proof's claims for a GET of dpopURI with tok.
func (h *holder) claims(tok string) map[string]any { return h.Claims("GET", dpopURI, tok, t0) }

// proof signs c with typ (dpop+jwt unless given) and the public key embedded.
func (h *holder) proof(t testing.TB, c map[string]any, typ ...string) string {
	return h.Proof(t, c, typ...)
}

// dpopRequest is a GET of dpopURI with tok under scheme ("DPoP" or "Bearer") and the proofs.
func dpopRequest(scheme, tok string, proofs ...string) policy.Request {
	h := map[string]string{"authorization": scheme + " " + tok}
	if len(proofs) > 0 {
		h["dpop"] = strings.Join(proofs, ",")
	}
	return policy.Request{Method: "GET", Scheme: "https", Host: "api.example.org", Path: "/api/things?page=2", Headers: h}
}

// dpopSetup is a world whose issuer's keys are in pki/as.jwks.json, a DPoP client, and a
// token bound to its key.
func dpopSetup(t testing.TB) (*world, *issuerKeys, *holder, string) {
	t.Helper()
	w := newWorld(t)
	k := newIssuerKeys(t)
	w.write(t, "pki/as.jwks.json", k.jwks(t))
	h := newHolder(t)
	c := claims(nil)
	c["cnf"] = map[string]any{"jkt": h.jkt}
	return w, k, h, k.sign(t, "ec-1", nil, c)
}

func set(c map[string]any, k string, v any) map[string]any {
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

// TestBoundTokenDPoP is the RFC 9449 matrix at a resource server: how a token is presented
// (section 7), the proof checks (section 4.3), and the bindings a route accepts.
func TestBoundTokenDPoP(t *testing.T) {
	w := newWorld(t)
	k := newIssuerKeys(t)
	w.write(t, "pki/as.jwks.json", k.jwks(t))
	engines := map[string]*policy.Engine{}
	for _, b := range []string{"dpop", "either", "both", "required", "certificate", "optional"} {
		engines[b] = w.engine(t, tokenConfig("jwks_file: pki/as.jwks.json", b))
	}
	alice, mallory := newHolder(t), newHolder(t)
	token := func(cnf map[string]any) string {
		c := claims(nil)
		if cnf != nil {
			c["cnf"] = cnf
		}
		return k.sign(t, "ec-1", nil, c)
	}
	x5t := policy.ThumbprintOf(w.billing.DER()).String()
	jktTok := token(map[string]any{"jkt": alice.jkt})
	bothTok := token(map[string]any{"jkt": alice.jkt, "x5t#S256": x5t})
	certTok := token(map[string]any{"x5t#S256": x5t})
	plainTok := token(nil)
	otherTok := token(map[string]any{"jkt": alice.jkt, "jti": "other"})
	hs256 := forge(map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}}, alice.claims(jktTok), func(string) []byte { return []byte("sig") })

	replayed := alice.proof(t, alice.claims(jktTok))
	tests := []struct {
		name    string
		binding string
		req     policy.Request
		cert    bool
		want    policy.Reason
	}{
		{"DPoP-bound token with its proof", "dpop", dpopRequest("DPoP", jktTok, alice.proof(t, alice.claims(jktTok))), false, policy.ReasonOK},
		{"the same under either", "either", dpopRequest("DPoP", jktTok, alice.proof(t, alice.claims(jktTok))), false, policy.ReasonOK},
		{"the same under optional", "optional", dpopRequest("DPoP", jktTok, alice.proof(t, alice.claims(jktTok))), false, policy.ReasonOK},
		{"the scheme in lower case", "dpop", dpopRequest("dpop", jktTok, alice.proof(t, alice.claims(jktTok))), false, policy.ReasonOK},
		{"htu compared after normalization", "dpop", dpopRequest("DPoP", jktTok, alice.proof(t, set(alice.claims(jktTok), "htu", "HTTPS://API.example.org:443/api/things#x"))), false, policy.ReasonOK},
		{"both bindings, certificate and proof", "both", dpopRequest("DPoP", bothTok, alice.proof(t, alice.claims(bothTok))), true, policy.ReasonOK},
		{"both bindings under either still need both", "either", dpopRequest("DPoP", bothTok, alice.proof(t, alice.claims(bothTok))), false, policy.ReasonTokenCertMissing},
		{"both bindings under certificate still need the proof", "certificate", dpopRequest("Bearer", bothTok), true, policy.ReasonTokenDPoPAsBearer},
		{"both bindings without a proof", "both", dpopRequest("DPoP", bothTok), true, policy.ReasonDPoPProofMissing},
		{"unbound token with the DPoP scheme, optional", "optional", dpopRequest("DPoP", plainTok, alice.proof(t, alice.claims(plainTok))), false, policy.ReasonOK},
		{"unbound token with the DPoP scheme, optional, bad proof", "optional", dpopRequest("DPoP", plainTok, alice.proof(t, set(alice.claims(plainTok), "htm", "POST"))), false, policy.ReasonDPoPMethod},

		{"DPoP-bound token as Bearer (section 7.2)", "dpop", dpopRequest("Bearer", jktTok, alice.proof(t, alice.claims(jktTok))), false, policy.ReasonTokenDPoPAsBearer},
		{"DPoP-bound token as Bearer, optional", "optional", dpopRequest("Bearer", jktTok), false, policy.ReasonTokenDPoPAsBearer},
		{"unbound token with the DPoP scheme", "dpop", dpopRequest("DPoP", plainTok, alice.proof(t, alice.claims(plainTok))), false, policy.ReasonTokenNotDPoPBound},
		{"certificate-bound token with the DPoP scheme", "either", dpopRequest("DPoP", certTok, alice.proof(t, alice.claims(certTok))), true, policy.ReasonTokenNotDPoPBound},
		{"DPoP-bound token where certificates are required", "required", dpopRequest("DPoP", jktTok, alice.proof(t, alice.claims(jktTok))), false, policy.ReasonTokenBindingMethod},
		{"DPoP-bound token where both are required", "both", dpopRequest("DPoP", jktTok, alice.proof(t, alice.claims(jktTok))), false, policy.ReasonTokenBindingMethod},
		{"certificate-bound token where DPoP is required", "dpop", dpopRequest("Bearer", certTok), true, policy.ReasonTokenBindingMethod},
		{"unbound token where DPoP is required", "dpop", dpopRequest("Bearer", plainTok), false, policy.ReasonTokenUnbound},

		{"no proof", "dpop", dpopRequest("DPoP", jktTok), false, policy.ReasonDPoPProofMissing},
		{"two proofs", "dpop", dpopRequest("DPoP", jktTok, alice.proof(t, alice.claims(jktTok)), alice.proof(t, alice.claims(jktTok))), false, policy.ReasonDPoPProofMissing},
		{"a proof by another key", "dpop", dpopRequest("DPoP", jktTok, mallory.proof(t, mallory.claims(jktTok))), false, policy.ReasonDPoPKeyMismatch},
		{"wrong htm", "dpop", dpopRequest("DPoP", jktTok, alice.proof(t, set(alice.claims(jktTok), "htm", "POST"))), false, policy.ReasonDPoPMethod},
		{"wrong htu host", "dpop", dpopRequest("DPoP", jktTok, alice.proof(t, set(alice.claims(jktTok), "htu", "https://evil.example/api/things"))), false, policy.ReasonDPoPURI},
		{"wrong htu path", "dpop", dpopRequest("DPoP", jktTok, alice.proof(t, set(alice.claims(jktTok), "htu", "https://api.example.org/api/other"))), false, policy.ReasonDPoPURI},
		{"htu with http", "dpop", dpopRequest("DPoP", jktTok, alice.proof(t, set(alice.claims(jktTok), "htu", "http://api.example.org/api/things"))), false, policy.ReasonDPoPURI},
		{"no ath", "dpop", dpopRequest("DPoP", jktTok, alice.proof(t, set(alice.claims(jktTok), "ath", nil))), false, policy.ReasonDPoPTokenHash},
		{"ath of another token", "dpop", dpopRequest("DPoP", jktTok, alice.proof(t, alice.claims(otherTok))), false, policy.ReasonDPoPTokenHash},
		{"iat too old", "dpop", dpopRequest("DPoP", jktTok, alice.proof(t, set(alice.claims(jktTok), "iat", t0.Add(-2*time.Minute).Unix()))), false, policy.ReasonDPoPTime},
		{"iat in the future", "dpop", dpopRequest("DPoP", jktTok, alice.proof(t, set(alice.claims(jktTok), "iat", t0.Add(time.Minute).Unix()))), false, policy.ReasonDPoPTime},
		{"typ JWT", "dpop", dpopRequest("DPoP", jktTok, alice.proof(t, alice.claims(jktTok), "JWT")), false, policy.ReasonDPoPProofType},
		{"HS256", "dpop", dpopRequest("DPoP", jktTok, hs256), false, policy.ReasonDPoPAlgorithm},
		{"not a JWS", "dpop", dpopRequest("DPoP", jktTok, "garbage"), false, policy.ReasonDPoPProofMalformed},
		{"no jwk", "dpop", dpopRequest("DPoP", jktTok, forge(map[string]any{"typ": "dpop+jwt", "alg": "ES256"}, alice.claims(jktTok), func(string) []byte { return make([]byte, 64) })), false, policy.ReasonDPoPKey},
		{"a signature of another proof", "dpop", dpopRequest("DPoP", jktTok, func() string {
			a, b := alice.proof(t, alice.claims(jktTok)), alice.proof(t, alice.claims(jktTok))
			return a[:strings.LastIndexByte(a, '.')] + b[strings.LastIndexByte(b, '.'):]
		}()), false, policy.ReasonDPoPSignature},
		{"no jti", "dpop", dpopRequest("DPoP", jktTok, alice.proof(t, set(alice.claims(jktTok), "jti", nil))), false, policy.ReasonDPoPProofMalformed},
		{"first use", "dpop", dpopRequest("DPoP", jktTok, replayed), false, policy.ReasonOK},
		{"replayed", "dpop", dpopRequest("DPoP", jktTok, replayed), false, policy.ReasonDPoPReplay},
		{"the proxy sent no scheme", "dpop", func() policy.Request {
			r := dpopRequest("DPoP", jktTok, alice.proof(t, alice.claims(jktTok)))
			r.Scheme = ""
			return r
		}(), false, policy.ReasonDPoPURI},
		{"the authority the client used differs from Host", "dpop", func() policy.Request {
			r := dpopRequest("DPoP", jktTok, alice.proof(t, set(alice.claims(jktTok), "htu", "https://api.example.org:8443/api/things")))
			r.Authority = "api.example.org:8443"
			return r
		}(), false, policy.ReasonOK},
		{"DPoP scheme without a token", "dpop", policy.Request{Method: "GET", Scheme: "https", Host: "api.example.org", Path: "/", Headers: map[string]string{"authorization": "DPoP"}}, false, policy.ReasonTokenRequestInvalid},
		{"DPoP and Bearer values joined", "either", policy.Request{Method: "GET", Path: "/api/things", Headers: map[string]string{"authorization": "Basic x, DPoP " + jktTok}}, false, policy.ReasonTokenRequestInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := policy.Input{ModeHint: "bound_token", Request: tc.req}
			if tc.cert {
				in.Certificate = presented(t, w.billing)
			}
			d := decide(engines[tc.binding], in)
			if d.Reason != tc.want || d.Allow != (tc.want == policy.ReasonOK) {
				t.Fatalf("%s (cause %v), want %s", d.Reason, d.Cause, tc.want)
			}
			if d.Allow && strings.HasPrefix(strings.ToLower(tc.req.Headers["authorization"]), "dpop ") && d.DPoPKey != alice.jkt {
				t.Errorf("allowed with DPoPKey %q, want %q", d.DPoPKey, alice.jkt)
			}
			if d.Allow && !strings.HasPrefix(strings.ToLower(tc.req.Headers["authorization"]), "dpop ") && d.DPoPKey != "" {
				t.Errorf("a Bearer allow with DPoPKey %q", d.DPoPKey)
			}
			if d.Cause != nil && (strings.Contains(d.Cause.Error(), jktTok) || strings.Contains(d.Cause.Error(), tc.req.Headers["dpop"]) && tc.req.Headers["dpop"] != "") {
				t.Errorf("the cause quotes the token or the proof: %v", d.Cause)
			}
		})
	}
}

// TestBoundTokenDPoPChallenge: a denial challenges in the scheme the request used, a request
// without a token in every scheme the resource accepts, and a DPoP-bound token sent as Bearer
// with DPoP.
func TestBoundTokenDPoPChallenge(t *testing.T) {
	w, _, _, jktTok := dpopSetup(t)
	bearer, dp, both := policy.SchemeBearer, policy.SchemeDPoP, policy.SchemeBearer|policy.SchemeDPoP
	for _, tc := range []struct {
		binding string
		req     policy.Request
		want    policy.Schemes
	}{
		{"certificate", apiRequest(""), bearer},
		{"dpop", apiRequest(""), dp},
		{"both", apiRequest(""), dp},
		{"either", apiRequest(""), both},
		{"optional", apiRequest(""), both},
		{"either", dpopRequest("DPoP", "junk.token.here"), dp},
		{"either", dpopRequest("Bearer", "junk.token.here"), bearer},
		{"either", dpopRequest("Bearer", jktTok), dp},
		{"dpop", dpopRequest("DPoP", jktTok), dp},
	} {
		d := decide(w.engine(t, tokenConfig("jwks_file: pki/as.jwks.json", tc.binding)), policy.Input{ModeHint: "bound_token", Request: tc.req})
		if d.Allow || d.Challenge != tc.want {
			t.Errorf("binding %s, %q: %s challenges %b, want %b", tc.binding, tc.req.Headers["authorization"], d.Reason, d.Challenge, tc.want)
		}
		if d.DPoPNonce != "" {
			t.Errorf("binding %s: a nonce with nonces off", tc.binding)
		}
	}
}

// TestBoundTokenDPoPNonce: with tokens.dpop.nonce, a proof needs a nonce certbind issued
// (use_dpop_nonce otherwise), and every DPoP answer carries a fresh one.
func TestBoundTokenDPoPNonce(t *testing.T) {
	w, _, alice, tok := dpopSetup(t)
	w.write(t, "nonce.key", []byte(strings.Repeat("k", 32)))
	e := w.engine(t, tokenConfig("jwks_file: pki/as.jwks.json", "dpop")+`  dpop:
    nonce: { key_file: nonce.key, lifetime: 2m }
`)

	d := decide(e, policy.Input{ModeHint: "bound_token", Request: dpopRequest("DPoP", tok, alice.proof(t, alice.claims(tok)))})
	if d.Reason != policy.ReasonDPoPNonce || d.DPoPNonce == "" {
		t.Fatalf("a proof without a nonce: %s (%v), nonce %q; want dpop_nonce and a nonce", d.Reason, d.Cause, d.DPoPNonce)
	}
	d = decide(e, policy.Input{ModeHint: "bound_token", Request: dpopRequest("DPoP", tok, alice.proof(t, set(alice.claims(tok), "nonce", d.DPoPNonce)))})
	if !d.Allow || d.DPoPNonce == "" {
		t.Fatalf("a proof with the nonce: %s (%v), nonce %q", d.Reason, d.Cause, d.DPoPNonce)
	}
	// A replica with the same key file accepts it; one with another key does not.
	n, _ := dpop.NewNonces([]byte(strings.Repeat("x", 32)), time.Minute)
	d = decide(e, policy.Input{ModeHint: "bound_token", Request: dpopRequest("DPoP", tok, alice.proof(t, set(alice.claims(tok), "nonce", n.Issue(t0))))})
	if d.Reason != policy.ReasonDPoPNonce {
		t.Errorf("a nonce of another key: %s", d.Reason)
	}
	w.write(t, "short.key", []byte("short"))
	if _, err := policy.LoadConfig(w.write(t, "bad.yaml", []byte(tokenConfig("jwks_file: pki/as.jwks.json", "dpop")+`  dpop:
    nonce: { key_file: short.key }
`)), policy.LoadOptions{}); err == nil || !strings.Contains(err.Error(), "tokens.dpop.nonce: nonce key of 5 bytes, want at least 32") {
		t.Errorf("a 5-byte nonce key: %v", err)
	}
}

// TestDPoPReplaySurvivesReload: a configuration swapped in takes over the proofs the one in
// force remembered.
func TestDPoPReplaySurvivesReload(t *testing.T) {
	w, _, alice, tok := dpopSetup(t)
	e := w.engine(t, tokenConfig("jwks_file: pki/as.jwks.json", "dpop"))
	proof := alice.proof(t, alice.claims(tok))
	in := policy.Input{ModeHint: "bound_token", Request: dpopRequest("DPoP", tok, proof)}
	if d := decide(e, in); !d.Allow {
		t.Fatalf("first use: %s (%v)", d.Reason, d.Cause)
	}
	e.Swap(w.load(t, tokenConfig("jwks_file: pki/as.jwks.json", "dpop")))
	if d := decide(e, in); d.Reason != policy.ReasonDPoPReplay {
		t.Errorf("after a reload: %s, want %s", d.Reason, policy.ReasonDPoPReplay)
	}
}

// TestBoundTokenIntrospectionDPoP: an introspection answer's cnf.jkt binds like a JWT's.
func TestBoundTokenIntrospectionDPoP(t *testing.T) {
	w := newWorld(t)
	alice, mallory := newHolder(t), newHolder(t)
	srv := newIntrospectionServer(t, map[string]string{
		"opaque-dpop": fmt.Sprintf(`{"active":true,"client_id":"billing","sub":"user-1","exp":%d,"cnf":{"jkt":%q}}`, t0.Add(time.Hour).Unix(), alice.jkt),
	})
	e := w.engine(t, exampleConfig+`tokens:
  introspection:
    endpoint: `+srv.URL+`
    client_id: certbind
    client_secret: s3cret
    binding: dpop
`)
	if d := decide(e, policy.Input{ModeHint: "bound_token", Request: dpopRequest("DPoP", "opaque-dpop", alice.proof(t, alice.claims("opaque-dpop")))}); !d.Allow || d.DPoPKey != alice.jkt {
		t.Errorf("its holder's proof: %s (%v)", d.Reason, d.Cause)
	}
	if d := decide(e, policy.Input{ModeHint: "bound_token", Request: dpopRequest("DPoP", "opaque-dpop", mallory.proof(t, mallory.claims("opaque-dpop")))}); d.Reason != policy.ReasonDPoPKeyMismatch {
		t.Errorf("another key's proof: %s", d.Reason)
	}
	if d := decide(e, policy.Input{ModeHint: "bound_token", Request: dpopRequest("Bearer", "opaque-dpop")}); d.Reason != policy.ReasonTokenDPoPAsBearer {
		t.Errorf("as Bearer: %s", d.Reason)
	}
}

// TestDPoPRedisReplicas: two replicas sharing Redis refuse a proof replayed across them; with
// Redis down a proof is denied (dpop_replay_unavailable) or, with on_error: memory, decided by
// the replica's own memory.
func TestDPoPRedisReplicas(t *testing.T) {
	s := redisenv.Run(t, redisenv.Config{Password: "pw"})
	w, _, alice, tok := dpopSetup(t)
	w.write(t, "redis.pw", []byte("pw\n"))
	conf := func(extra string) string {
		return tokenConfig("jwks_file: pki/as.jwks.json", "dpop") + `  dpop:
    replay:
      store: redis
      redis: { address: "redis://` + s.Addr + `/2", password_file: redis.pw, timeout: 200ms }
` + extra
	}
	a, b := w.engine(t, conf("")), w.engine(t, conf(""))
	proof := alice.proof(t, alice.claims(tok))
	in := policy.Input{ModeHint: "bound_token", Request: dpopRequest("DPoP", tok, proof)}
	if d := decide(a, in); !d.Allow {
		t.Fatalf("first use at replica a: %s (%v)", d.Reason, d.Cause)
	}
	if d := decide(b, in); d.Reason != policy.ReasonDPoPReplay {
		t.Fatalf("the same proof at replica b: %s, want %s", d.Reason, policy.ReasonDPoPReplay)
	}
	fallback := w.engine(t, conf("      on_error: memory\n"))
	s.Stop()
	fresh := policy.Input{ModeHint: "bound_token", Request: dpopRequest("DPoP", tok, alice.proof(t, alice.claims(tok)))}
	d := decide(a, fresh)
	if d.Reason != policy.ReasonDPoPReplayDown || d.Reason.Class() != policy.ClassUnavailable {
		t.Errorf("Redis down: %s, want %s", d.Reason, policy.ReasonDPoPReplayDown)
	}
	if d.Cause == nil || strings.Contains(d.Cause.Error(), "pw") {
		t.Errorf("the cause %v quotes the password or says nothing", d.Cause)
	}
	if d := decide(fallback, fresh); !d.Allow {
		t.Errorf("Redis down, on_error memory: %s (%v)", d.Reason, d.Cause)
	}
	if d := decide(fallback, fresh); d.Reason != policy.ReasonDPoPReplay {
		t.Errorf("Redis down, on_error memory, replayed: %s", d.Reason)
	}
}

func TestDPoPConfigErrors(t *testing.T) {
	w := newWorld(t)
	k := newIssuerKeys(t)
	w.write(t, "pki/as.jwks.json", k.jwks(t))
	for _, tc := range []struct{ dpop, want string }{
		{"replay: { store: redis }", "tokens.dpop.replay.redis.address: required with store: redis"},
		{"replay: { store: redis, redis: { address: 'redis://u:secret@127.0.0.1:1' } }", "tokens.dpop.replay.redis: "},
		{"replay: { store: memcached }", `tokens.dpop.replay.store: "memcached": want memory or redis`},
		{"replay: { on_error: memory }", "tokens.dpop.replay: redis and on_error apply to store: redis"},
		{"replay: { store: redis, on_error: allow, redis: { address: '127.0.0.1:1' } }", `tokens.dpop.replay.on_error: "allow": want deny or memory`},
		{"algorithms: [HS256]", `tokens.dpop.algorithms[0]: "HS256"`},
		{"window: 2h", "tokens.dpop.window: 2h0m0s: want between 1s and 1h"},
		{"window: 500ms", "tokens.dpop.window: 500ms: want between 1s and 1h"},
		{"nonce: { key_file: missing.key }", "tokens.dpop.nonce.key_file: "},
	} {
		_, err := policy.LoadConfig(w.write(t, "bad.yaml", []byte(tokenConfig("jwks_file: pki/as.jwks.json", "dpop")+"  dpop: { "+tc.dpop+" }\n")), policy.LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.dpop, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error quotes the password: %v", tc.dpop, err)
		}
	}
	if _, err := policy.LoadConfig(w.write(t, "bad.yaml", []byte(tokenConfig("jwks_file: pki/as.jwks.json", "bound"))), policy.LoadOptions{}); err == nil ||
		!strings.Contains(err.Error(), `binding: "bound": want certificate, dpop, either, both or optional`) {
		t.Errorf("binding bound: %v", err)
	}
}

// FuzzBoundTokenDPoP: whatever the Authorization value, proofs, method and URI, a decision
// never panics, and the only allows are of the one valid token with a proof of its key for this
// method and URI, each proof at most once.
func FuzzBoundTokenDPoP(f *testing.F) {
	w := newWorld(f)
	k := newIssuerKeys(f)
	w.write(f, "pki/as.jwks.json", k.jwks(f))
	e := w.engine(f, tokenConfig("jwks_file: pki/as.jwks.json", "either"))
	alice := newHolder(f)
	c := claims(nil)
	c["cnf"] = map[string]any{"jkt": alice.jkt}
	tok := k.sign(f, "ec-1", nil, c)
	valid := alice.proof(f, alice.claims(tok))
	f.Add("DPoP "+tok, valid, "GET", "https", "api.example.org", "/api/things")
	f.Add("DPoP "+tok, valid+","+valid, "GET", "https", "api.example.org", "/api/things")
	f.Add("Bearer "+tok, valid, "GET", "https", "api.example.org", "/api/things")
	f.Add("dpop  "+tok, alice.proof(f, set(alice.claims(tok), "htm", "POST")), "POST", "HTTPS", "API.example.org:443", "/api/things?x#y")
	f.Add("DPoP x.y.z", "e30.e30.", "GET", "", "", "")
	seen := map[string]bool{}
	f.Fuzz(func(t *testing.T, authz, proof, method, scheme, authority, path string) {
		h := map[string]string{"authorization": authz}
		if proof != "" {
			h["dpop"] = proof
		}
		d := decide(e, policy.Input{ModeHint: "bound_token", Request: policy.Request{Method: method, Scheme: scheme, Host: authority, Path: path, Headers: h}})
		if !d.Allow {
			return
		}
		if d.DPoPKey != alice.jkt || seen[proof] {
			t.Fatalf("allowed %q with proof %q (key %q, seen before %v)", authz, proof, d.DPoPKey, seen[proof])
		}
		seen[proof] = true
	})
}

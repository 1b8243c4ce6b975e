package interop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certbind/certbind/policy"
	redisenv "github.com/certbind/certbind/testenv/redis"
	"github.com/certbind/certbind/testenv/testbed"
)

// The DPoP client of the authorization server (RFC 9449 section 5.2: every token it gets is
// DPoP-bound). It authenticates with a secret and holds no certificate: its tokens are bound
// to its DPoP key only.
const (
	dpopClient = "dpop-app"
	dpopSecret = "interop-dpop-secret"
)

// dpopAlgs is certbind's tokens.dpop.algorithms, as a DPoP challenge's algs lists them.
const dpopAlgs = "ES256 ES384 EdDSA"

// dpopKey is a DPoP key pair in a file (a private JWK, for client.mjs) and its RFC 7638
// thumbprint, computed here: what certbind must pass upstream in x-certbind-dpop-jkt.
type dpopKey struct {
	file string
	jkt  string
}

func newDPoPKey(t *testing.T) dpopKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	data, err := jose.JSONWebKey{Key: k}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dpop.jwk")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	pub := jose.JSONWebKey{Key: &k.PublicKey}
	sum, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return dpopKey{file: file, jkt: base64.RawURLEncoding.EncodeToString(sum)}
}

// step is one command of a client.mjs batch: "command" and its flags by name, as on the
// command line.
type step map[string]any

// batch runs the steps in one client.mjs process, in order, and returns their answers.
func (c oauthClient) batch(t *testing.T, steps ...step) []json.RawMessage {
	t.Helper()
	in, err := json.Marshal(steps)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		OK      bool              `json:"ok"`
		Results []json.RawMessage `json:"results"`
		Error   string            `json:"error_description"`
	}
	c.runWith(t, in, &out, "batch")
	if !out.OK || len(out.Results) != len(steps) {
		t.Fatalf("client.mjs batch: %d answers to %d steps: %s", len(out.Results), len(steps), out.Error)
	}
	return out.Results
}

// calls runs call and send steps and returns their answers.
func (c oauthClient) calls(t *testing.T, steps ...step) []callResult {
	t.Helper()
	out := make([]callResult, len(steps))
	for i, raw := range c.batch(t, steps...) {
		if err := json.Unmarshal(raw, &out[i]); err != nil || !out[i].OK {
			t.Fatalf("client.mjs %v: %s %s", steps[i]["command"], raw, err)
		}
	}
	return out
}

// dpopTokenStep is a client_credentials grant at the provider's own token endpoint, the
// client authenticated with its secret, with a DPoP proof of key that openid-client's DPoP
// handle makes.
func dpopTokenStep(issuer, resource string, key dpopKey) step {
	return step{"command": "token", "issuer": issuer, "token-endpoint": issuer + "/oauth2/token",
		"client-id": dpopClient, "auth": "client_secret_basic", "secret": dpopSecret,
		"resource": resource, "scope": "read", "dpop-key": key.file}
}

// callStep is openid-client's protected-resource request with a DPoP handle for key (nil:
// none, so the token goes as Bearer).
func callStep(url, accessToken string, key *dpopKey) step {
	s := step{"command": "call", "url": url, "token": accessToken}
	if key != nil {
		s["dpop-key"] = key.file
	}
	return s
}

// request is a hand-made GET (client.mjs send): what a correct client never sends.
type request struct {
	url           string
	scheme, token string // Authorization; none when scheme is ""
	host          string // another Host than the URL's
	proof         string // this DPoP header, as it is
	// key: a proof openid-client makes for (htm, htu, athToken), defaulting to the request's
	// method, URL and token; with noATH jose makes it, without ath.
	key                *dpopKey
	htm, htu, athToken string
	noATH              bool
}

func (r request) step() step {
	s := step{"command": "send", "url": r.url}
	for name, v := range map[string]string{"host": r.host, "dpop": r.proof} {
		if v != "" {
			s[name] = v
		}
	}
	if r.scheme != "" {
		s["scheme"], s["token"] = r.scheme, r.token
	}
	if r.key != nil {
		s["dpop-key"] = r.key.file
		for name, v := range map[string]string{"htm": r.htm, "htu": r.htu, "ath-token": r.athToken} {
			if v != "" {
				s[name] = v
			}
		}
		if r.noATH {
			s["no-ath"] = true
		}
	}
	return s
}

// dpopChallenge is certbind's WWW-Authenticate for a refusal of reason with the DPoP scheme:
// invalid_dpop_proof for the proof's checks, invalid_token for the token's (RFC 9449 section 7.1).
func dpopChallenge(errCode string, reason policy.Reason) string {
	return `DPoP realm="interop", error="` + errCode + `", error_description="` + reason.Description() + `", algs="` + dpopAlgs + `"`
}

// expectation is what a refused request must get from certbind: 401, the exact challenge, and
// the reason.
type expectation struct {
	name    string
	errCode string // invalid_dpop_proof or invalid_token
	reason  policy.Reason
}

func (e expectation) check(t *testing.T, f front, got callResult) {
	t.Helper()
	if want := dpopChallenge(e.errCode, e.reason); !f.denied(got, 401, e.reason) || got.WWWAuthenticate != want {
		t.Errorf("%s: want 401 %s with %q, got %+v", e.name, e.reason, want, got)
	}
}

// upstreamHeader is a header the demo API received, from its echo.
func upstreamHeader(t *testing.T, got callResult, name string) string {
	t.Helper()
	var echo struct {
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(got.Body), &echo); err != nil {
		t.Fatalf("the API's echo: %v in %q", err, got.Body)
	}
	return echo.Headers[name]
}

// allowedWith checks an allowed call: 200, and the upstream told the key.
func allowedWith(t *testing.T, what string, got callResult, key dpopKey) {
	t.Helper()
	if got.Status != 200 || upstreamHeader(t, got, "x-certbind-dpop-jkt") != key.jkt {
		t.Fatalf("%s: want 200 with x-certbind-dpop-jkt %s, got %+v", what, key.jkt, got)
	}
}

// dpopTokens are DPoP-bound tokens for key, fetched directly from the providers without a
// certificate, as a client without mutual TLS would: main's JWT and opaque token, and other's
// JWT.
func (s *suite) dpopTokens(t *testing.T, key dpopKey) (jwt, opaque, otherJWT string) {
	t.Helper()
	other := s.as.Providers[provOther].Issuer
	steps := []step{dpopTokenStep(s.issuer(), jwtAPI, key), dpopTokenStep(s.issuer(), opaqueAPI, key), dpopTokenStep(other, jwtAPI, key)}
	var toks []string
	for i, raw := range s.clients[dpopClient].batch(t, steps...) {
		var tok tokenResult
		if err := json.Unmarshal(raw, &tok); err != nil || !tok.OK || tok.TokenType != "dpop" {
			t.Fatalf("DPoP token for %s at %s: %s", steps[i]["resource"], steps[i]["issuer"], raw)
		}
		toks = append(toks, tok.AccessToken)
	}
	jwt, opaque, otherJWT = toks[0], toks[1], toks[2]
	if strings.Count(jwt, ".") != 2 || strings.Count(opaque, ".") == 2 {
		t.Fatalf("want a JWT and an opaque token: %q, %q", jwt, opaque)
	}
	for _, tok := range []string{jwt, otherJWT} {
		if cnf := cnfOf(t, tok); cnf["jkt"] != key.jkt || len(cnf) != 1 {
			t.Fatalf("a JWT's cnf is %v, want jkt %s only", cnf, key.jkt)
		}
	}
	return jwt, opaque, otherJWT
}

// cnfOf is a JWT's cnf claim, unverified.
func cnfOf(t *testing.T, jwt string) map[string]string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Cnf map[string]string `json:"cnf"`
	}
	if err != nil || json.Unmarshal(data, &claims) != nil {
		t.Fatalf("not a JWT payload: %q", parts[1])
	}
	return claims.Cnf
}

// dpop: DPoP-bound tokens of oidc-provider (a JWT verified by signature, an opaque one by
// introspection) with openid-client's proofs, through the proxy: allowed with the library's
// own proof, refused with every proof or presentation a correct client never sends. The
// client's certificate only opens the proxy's TLS (both proxies ask for one); the tokens are
// not bound to it.
func (s *suite) dpop(t *testing.T, f front) {
	key, otherKey := newDPoPKey(t), newDPoPKey(t)
	jwt, opaque, otherJWT := s.dpopTokens(t, key)
	c := s.clients[testbed.Billing]
	certBound := c.token(t, s.issuer(), f.base+"/oauth2/token", testbed.Billing, "tls_client_auth", jwtAPI)
	if !certBound.OK {
		t.Fatalf("certificate-bound token: %+v", certBound)
	}
	api := f.base + "/api/orders"
	kinds := []struct{ name, tok, other string }{{"JWT", jwt, opaque}, {"opaque", opaque, jwt}}

	// openid-client's own requests first: their proofs are replayed below.
	var allowed []step
	for _, k := range kinds {
		allowed = append(allowed, callStep(api, k.tok, &key))
	}
	used := c.calls(t, allowed...)
	for i, k := range kinds {
		allowedWith(t, k.name+" with openid-client's proof", used[i], key)
	}

	var steps []step
	var want []expectation
	add := func(e expectation, st step) {
		steps, want = append(steps, st), append(want, e)
	}
	for i, k := range kinds {
		for _, row := range []struct {
			name   string
			req    request
			reason policy.Reason
		}{
			{"the proof replayed", request{proof: used[i].Proof}, policy.ReasonDPoPReplay},
			{"a proof by another key", request{key: &otherKey}, policy.ReasonDPoPKeyMismatch},
			{"a proof for POST", request{key: &key, htm: "POST"}, policy.ReasonDPoPMethod},
			{"a proof for another path", request{key: &key, htu: f.base + "/api/invoices"}, policy.ReasonDPoPURI},
			{"a proof for another authority", request{key: &key, htu: strings.Replace(api, "127.0.0.1", "localhost", 1)}, policy.ReasonDPoPURI},
			{"a proof without ath", request{key: &key, noATH: true}, policy.ReasonDPoPTokenHash},
			{"a proof for another token", request{key: &key, athToken: k.other}, policy.ReasonDPoPTokenHash},
			{"no proof", request{}, policy.ReasonDPoPProofMissing},
		} {
			r := row.req
			r.url, r.scheme, r.token = api, "DPoP", k.tok
			add(expectation{k.name + ": " + row.name, "invalid_dpop_proof", row.reason}, r.step())
		}
		// openid-client without its DPoP handle sends the token as Bearer (RFC 9449 section
		// 7.2): refused, with the DPoP challenge that says how to send it.
		add(expectation{k.name + ": as Bearer", "invalid_token", policy.ReasonTokenDPoPAsBearer}, callStep(api, k.tok, nil))
		add(expectation{k.name + ": as Bearer with a proof", "invalid_token", policy.ReasonTokenDPoPAsBearer},
			request{url: api, scheme: "Bearer", token: k.tok, key: &key}.step())
	}
	add(expectation{"a certificate-bound token with the DPoP scheme", "invalid_token", policy.ReasonTokenNotDPoPBound},
		request{url: api, scheme: "DPoP", token: certBound.AccessToken, key: &key}.step())
	add(expectation{"a DPoP token of an issuer with binding: required", "invalid_token", policy.ReasonTokenBindingMethod},
		callStep(api, otherJWT, &key))
	noToken := len(steps)
	steps = append(steps, request{url: api}.step())

	got := c.calls(t, steps...)
	for i, e := range want {
		e.check(t, f, got[i])
	}
	// No token: a challenge for each scheme the resource accepts (RFC 9449 section 7.1).
	wantNoToken := `Bearer realm="interop", DPoP realm="interop", algs="` + dpopAlgs + `"`
	if g := got[noToken]; g.Status != 401 || g.WWWAuthenticate != wantNoToken || (f.reasonHeader && g.Reason != string(policy.ReasonTokenMissing)) {
		t.Errorf("no token: want 401 with %q, got %+v", wantNoToken, g)
	}
}

// dpopReplicas: the proxies' two certbinds are two replicas of one API. A client reaches
// either through one name (here the authority of the proxy the proof was made for, sent as
// Host to the other proxy, as a load balancer in front of both would pass it on), so a proof
// used at one replica must be refused at the other. shared says whether they share a replay
// store; without one, each replica remembers only its own proofs.
func (s *suite) dpopReplicas(t *testing.T, shared bool) {
	key := newDPoPKey(t)
	jwt, _, _ := s.dpopTokens(t, key)
	c := s.clients[testbed.Billing]
	for i, first := range s.fronts {
		second := s.fronts[1-i]
		t.Run(first.name+" then "+second.name, func(t *testing.T) {
			api := first.base + "/api/orders"
			u, err := url.Parse(api)
			if err != nil {
				t.Fatal(err)
			}
			used := c.calls(t, callStep(api, jwt, &key))[0]
			allowedWith(t, "at "+first.name, used, key)
			at := func(r request) step {
				r.url, r.host, r.scheme, r.token = second.base+"/api/orders", u.Host, "DPoP", jwt
				return r.step()
			}
			got := c.calls(t, at(request{key: &key, htu: api}), at(request{proof: used.Proof}))
			// A fresh proof for the same URI passes the second replica: what refuses the replay
			// is the replay check.
			allowedWith(t, "a fresh proof for "+api+" at "+second.name, got[0], key)
			if !shared {
				// The documented limit of store: memory.
				if got[1].Status != 200 {
					t.Errorf("without a shared store, the replay at the other replica: %+v", got[1])
				}
				return
			}
			expectation{"the proof replayed at the other replica", "invalid_dpop_proof", policy.ReasonDPoPReplay}.check(t, second, got[1])
		})
	}
}

// TestInteropDPoPReplicas: two certbinds (the one behind nginx and the one behind the Envoy
// stand-in) share a redis-server as tokens.dpop.replay.store: a proof used at one is
// refused at the other.
func TestInteropDPoPReplicas(t *testing.T) {
	s := setup(t)
	r := redisenv.Run(t, redisenv.Config{})
	replay := "    replay:\n      store: redis\n      redis: { address: " + r.Addr + ", key_prefix: interop/ }\n"
	s.fronts = startFronts(t, s.dir, s.as, certbindConfig(s.as, introspectBasic, replay))
	s.dpopReplicas(t, true)
}

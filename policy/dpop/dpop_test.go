package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

const (
	apiURI = "https://api.example.org/orders/42"
	token  = "an-access-token"
)

// minter makes proofs with one ES256 key, by hand, so that any header or claim can be wrong.
type minter struct {
	key *ecdsa.PrivateKey
	jwk map[string]any
	jkt string
}

func newMinter(t testing.TB) *minter {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := jose.JSONWebKey{Key: &k.PublicKey}
	js, _ := pub.MarshalJSON()
	var m map[string]any
	json.Unmarshal(js, &m)
	thumb, _ := pub.Thumbprint(crypto.SHA256)
	return &minter{key: k, jwk: m, jkt: base64.RawURLEncoding.EncodeToString(thumb)}
}

func (m *minter) header() map[string]any {
	return map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": m.jwk}
}

func claims(jti string) map[string]any {
	return map[string]any{"jti": jti, "htm": "GET", "htu": apiURI, "iat": t0.Unix(), "ath": TokenHash(token)}
}

func b64json(v any) string {
	js, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(js)
}

// mint signs header and claims with m's key (ES256: r||s, 32 bytes each).
func (m *minter) mint(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	input := b64json(header) + "." + b64json(claims)
	h := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, m.key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func verifier(t testing.TB, algs ...jose.SignatureAlgorithm) *Verifier {
	t.Helper()
	v, err := NewVerifier(Config{Algorithms: algs, Replay: NewMemory(1000)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func with(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for kk, vv := range m {
		out[kk] = vv
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

// TestVerify is RFC 9449 section 4.3, one row per check.
func TestVerify(t *testing.T) {
	m, other := newMinter(t), newMinter(t)
	api := Request{Method: "GET", URI: apiURI, AccessToken: token, JKT: m.jkt}
	privateJWK := with(m.jwk, "d", base64.RawURLEncoding.EncodeToString(m.key.D.FillBytes(make([]byte, 32))))
	hmac := b64json(map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}}) + "." + b64json(claims("h")) + ".c2ln"
	for _, tc := range []struct {
		name    string
		headers []string
		req     Request
		want    Kind // "" : accepted
	}{
		{"a valid proof with its token", []string{m.mint(t, m.header(), claims("1"))}, api, ""},
		{"at a token endpoint, htu of the API", []string{m.mint(t, m.header(), with(with(claims("2"), "ath", nil), "htm", "POST"))},
			Request{Method: "POST", URI: "https://as.example.org/token"}, KindURI},
		{"token endpoint with its URI", []string{m.mint(t, m.header(), with(with(with(claims("3"), "ath", nil), "htm", "POST"), "htu", "https://as.example.org/token"))},
			Request{Method: "POST", URI: "https://as.example.org/token"}, ""},
		{"htu normalized: case, default port, query", []string{m.mint(t, m.header(), with(claims("4"), "htu", "HTTPS://API.Example.org:443/orders/%34%32?x=1#f"))}, api, ""},
		{"typ in another case", []string{m.mint(t, with(m.header(), "typ", "DPoP+JWT"), claims("5"))}, api, ""},

		{"no DPoP header", nil, api, KindMissing},
		{"two DPoP headers", []string{m.mint(t, m.header(), claims("6")), m.mint(t, m.header(), claims("7"))}, api, KindMissing},
		{"not a JWS", []string{"not-a-jwt"}, api, KindMalformed},
		{"header not base64url", []string{"!!.e30.sig"}, api, KindMalformed},
		{"larger than the limit", []string{strings.Repeat("a", DefaultMaxBytes+1)}, api, KindMalformed},
		{"no typ", []string{m.mint(t, with(m.header(), "typ", nil), claims("8"))}, api, KindType},
		{"typ JWT", []string{m.mint(t, with(m.header(), "typ", "JWT"), claims("9"))}, api, KindType},
		{"no alg", []string{m.mint(t, with(m.header(), "alg", nil), claims("10"))}, api, KindMalformed},
		{"alg none", []string{m.mint(t, with(m.header(), "alg", "none"), claims("11"))}, api, KindAlgorithm},
		{"HMAC with a symmetric jwk", []string{hmac}, api, KindAlgorithm},
		{"no jwk", []string{m.mint(t, with(m.header(), "jwk", nil), claims("12"))}, api, KindKey},
		{"jwk with its private key", []string{m.mint(t, with(m.header(), "jwk", privateJWK), claims("13"))}, api, KindKey},
		{"signed by another key than jwk", []string{other.mint(t, m.header(), claims("14"))}, api, KindSignature},
		{"no jti", []string{m.mint(t, m.header(), with(claims(""), "jti", nil))}, api, KindMalformed},
		{"no htm", []string{m.mint(t, m.header(), with(claims("15"), "htm", nil))}, api, KindMalformed},
		{"no htu", []string{m.mint(t, m.header(), with(claims("16"), "htu", nil))}, api, KindMalformed},
		{"no iat", []string{m.mint(t, m.header(), with(claims("17"), "iat", nil))}, api, KindMalformed},
		{"iat a string", []string{m.mint(t, m.header(), with(claims("18"), "iat", "now"))}, api, KindMalformed},
		{"htm of another method", []string{m.mint(t, m.header(), with(claims("19"), "htm", "POST"))}, api, KindMethod},
		{"htm in lower case", []string{m.mint(t, m.header(), with(claims("20"), "htm", "get"))}, api, KindMethod},
		{"htu of another path", []string{m.mint(t, m.header(), with(claims("21"), "htu", "https://api.example.org/orders/43"))}, api, KindURI},
		{"htu of another host", []string{m.mint(t, m.header(), with(claims("22"), "htu", "https://evil.example.org/orders/42"))}, api, KindURI},
		{"htu over http", []string{m.mint(t, m.header(), with(claims("23"), "htu", "http://api.example.org/orders/42"))}, api, KindURI},
		{"htu not a URI", []string{m.mint(t, m.header(), with(claims("24"), "htu", "/orders/42"))}, api, KindURI},
		{"iat too old", []string{m.mint(t, m.header(), with(claims("25"), "iat", t0.Add(-DefaultWindow-DefaultLeeway-time.Second).Unix()))}, api, KindTime},
		{"iat in the future", []string{m.mint(t, m.header(), with(claims("26"), "iat", t0.Add(DefaultLeeway+time.Second).Unix()))}, api, KindTime},
		{"iat within the leeway", []string{m.mint(t, m.header(), with(claims("27"), "iat", t0.Add(DefaultLeeway).Unix()))}, api, ""},
		{"no ath with a token", []string{m.mint(t, m.header(), with(claims("28"), "ath", nil))}, api, KindTokenHash},
		{"ath of another token", []string{m.mint(t, m.header(), with(claims("29"), "ath", TokenHash("another")))}, api, KindTokenHash},
		{"token bound to another key", []string{other.mint(t, other.header(), claims("30"))}, api, KindBinding},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := verifier(t).Verify(context.Background(), tc.headers, tc.req, t0)
			if got := KindOf(err); got != tc.want || (err == nil) != (tc.want == "") {
				t.Fatalf("kind %q (%v), want %q", got, err, tc.want)
			}
			if err == nil && p.JKT != m.jkt {
				t.Errorf("jkt %s, want %s", p.JKT, m.jkt)
			}
			if err != nil && (strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "eyJ")) {
				t.Errorf("the error quotes the token or the proof: %v", err)
			}
		})
	}
}

// TestVerifyAlgorithms: proofs of every default algorithm verify, made with go-jose's signer
// (the jwk embedded as a client library embeds it); a verifier limited to ES256 refuses the
// others.
func TestVerifyAlgorithms(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		alg jose.SignatureAlgorithm
		key any
	}{{jose.ES384, ec}, {jose.PS256, rs}, {jose.RS256, rs}, {jose.EdDSA, ed}} {
		t.Run(string(tc.alg), func(t *testing.T) {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: tc.alg, Key: tc.key},
				(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
			if err != nil {
				t.Fatal(err)
			}
			payload, _ := json.Marshal(claims(string(tc.alg)))
			jws, err := signer.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			proof, _ := jws.CompactSerialize()
			r := Request{Method: "GET", URI: apiURI, AccessToken: token}
			if _, err := verifier(t).Verify(context.Background(), []string{proof}, r, t0); err != nil {
				t.Fatalf("default algorithms: %v", err)
			}
			if _, err := verifier(t, jose.ES256).Verify(context.Background(), []string{proof}, r, t0); KindOf(err) != KindAlgorithm {
				t.Fatalf("ES256 only: %v, want %s", err, KindAlgorithm)
			}
		})
	}
	if _, err := NewVerifier(Config{Algorithms: []jose.SignatureAlgorithm{jose.HS256}, Replay: NewMemory(1)}); err == nil {
		t.Error("a verifier accepting HS256 was made")
	}
	if _, err := NewVerifier(Config{}); err == nil {
		t.Error("a verifier without a replay store was made")
	}
}

// TestReplay: a proof is accepted once within its window, by the key and jti; a refused proof
// is not remembered; a full store and a failing store deny.
func TestReplay(t *testing.T) {
	m := newMinter(t)
	r := Request{Method: "GET", URI: apiURI, AccessToken: token}
	mem := NewMemory(2)
	v, err := NewVerifier(Config{Replay: mem})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(proof string) Kind {
		_, err := v.Verify(context.Background(), []string{proof}, r, t0)
		return KindOf(err)
	}
	p := m.mint(t, m.header(), claims("a"))
	if k := verify(p); k != "" {
		t.Fatalf("first use: %s", k)
	}
	if k := verify(p); k != KindReplay {
		t.Fatalf("second use: %q, want replay", k)
	}
	if k := verify(m.mint(t, m.header(), claims("a"))); k != KindReplay {
		t.Fatalf("another proof with the same jti: %q, want replay", k)
	}
	if k := verify(newMinterProof(t, "a")); k != "" {
		t.Fatalf("another key's proof with the same jti: %q", k)
	}
	if k := verify(m.mint(t, m.header(), with(claims("b"), "htm", "POST"))); k != KindMethod {
		t.Fatalf("refused proof: %q", k)
	}
	if k := verify(m.mint(t, m.header(), with(claims("b"), "htm", "GET"))); k != KindUnavailable {
		t.Fatalf("a third proof with the store full of live ones: %q, want unavailable", k)
	}
	now := t0.Add(DefaultWindow + 3*DefaultLeeway)
	if added, err := mem.Add(context.Background(), "later", now, now.Add(time.Minute)); !added || err != nil {
		t.Fatalf("once the entries expired: %v %v", added, err)
	}

	failing, _ := NewVerifier(Config{Replay: replayFunc(func() (bool, error) { return false, errors.New("connection refused") })})
	if _, err := failing.Verify(context.Background(), []string{m.mint(t, m.header(), claims("c"))}, r, t0); KindOf(err) != KindUnavailable {
		t.Fatalf("store down: %v, want unavailable", err)
	}
}

func newMinterProof(t *testing.T, jti string) string {
	o := newMinter(t)
	return o.mint(t, o.header(), claims(jti))
}

type replayFunc func() (bool, error)

func (f replayFunc) Add(context.Context, string, time.Time, time.Time) (bool, error) { return f() }

// TestNormalizeURI: RFC 3986 section 6.2.2 and 6.2.3, and what is not a request URI.
func TestNormalizeURI(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://api.example.org/x", "https://api.example.org/x"},
		{"HTTPS://API.EXAMPLE.ORG/x", "https://api.example.org/x"},
		{"https://api.example.org:443/x", "https://api.example.org/x"},
		{"http://api.example.org:80/x", "http://api.example.org/x"},
		{"https://api.example.org:8443/x", "https://api.example.org:8443/x"},
		{"https://api.example.org", "https://api.example.org/"},
		{"https://api.example.org/x?q=1#frag", "https://api.example.org/x"},
		{"https://api.example.org/%7euser/a%2fb", "https://api.example.org/~user/a%2Fb"},
		{"https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"},
		{"https://api.example.org/X", "https://api.example.org/X"},
	} {
		if got, err := normalizeURI(tc.in); err != nil || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"/x", "ftp://example.org/x", "https:///x", "https://user@example.org/x", "https://example.org/%zz", "mailto:a@b"} {
		if got, err := normalizeURI(bad); err == nil {
			t.Errorf("%s: accepted as %q", bad, got)
		}
	}
}

// FuzzVerify: no input panics; whatever is accepted names its key's thumbprint, and is refused
// as a replay the second time.
func FuzzVerify(f *testing.F) {
	m := newMinter(f)
	f.Add(m.mint(f, m.header(), claims("seed")), "GET", apiURI)
	f.Add(m.mint(f, with(m.header(), "typ", "JWT"), claims("seed2")), "POST", "https://as.example.org/token")
	f.Add("e30.e30.e30", "GET", apiURI)
	f.Fuzz(func(t *testing.T, proof, method, uri string) {
		v := verifier(t)
		r := Request{Method: method, URI: uri}
		p, err := v.Verify(context.Background(), []string{proof}, r, t0)
		if err != nil {
			if KindOf(err) == "" {
				t.Fatalf("an error without a kind: %v", err)
			}
			return
		}
		if p.JKT == "" {
			t.Fatal("accepted without a thumbprint")
		}
		if _, err := v.Verify(context.Background(), []string{proof}, r, t0); KindOf(err) != KindReplay {
			t.Fatalf("accepted twice: %v", err)
		}
	})
}

// BenchmarkVerify: one proof verification with a new jti each time (the warm DPoP request's
// inherent work: parse, one ES256 verification, thumbprint, replay insertion), beside the bare
// ES256 verification it contains.
func BenchmarkVerify(b *testing.B) {
	m := newMinter(b)
	v, err := NewVerifier(Config{Replay: NewMemory(b.N + 1)})
	if err != nil {
		b.Fatal(err)
	}
	r := Request{Method: "GET", URI: apiURI, AccessToken: token, JKT: m.jkt}
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = m.mint(b, m.header(), claims(strconv.Itoa(i)))
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := v.Verify(context.Background(), proofs[i:i+1], r, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkES256Verify(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := sha256.Sum256([]byte("x"))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, h[:])
	b.ResetTimer()
	for range b.N {
		if !ecdsa.VerifyASN1(&k.PublicKey, h[:], sig) {
			b.Fatal("no")
		}
	}
}

// TestMemoryGenerations: over a long run of proofs with random windows, Memory answers as a
// plain map of every key to its expiry would, and holds no more than two windows of entries.
func TestMemoryGenerations(t *testing.T) {
	const window = 65 * time.Second
	mem := NewMemory(1 << 20)
	ref := map[string]time.Time{}
	rng := mrand.New(mrand.NewPCG(1, 2))
	now := t0
	maxLen := 0
	for i := range 200_000 {
		now = now.Add(time.Duration(rng.IntN(2000)) * time.Microsecond) // about 1000 per second
		// Mostly new keys, some repeated from the recent past, some from long ago.
		key := strconv.Itoa(i)
		if rng.IntN(4) == 0 {
			key = strconv.Itoa(max(0, i-rng.IntN(150_000)))
		}
		until := now.Add(window - time.Duration(rng.IntN(10))*time.Second)
		got, err := mem.Add(context.Background(), key, now, until)
		if err != nil {
			t.Fatal(err)
		}
		e, seen := ref[key]
		want := !seen || !now.Before(e)
		if got != want {
			t.Fatalf("proof %d (key %s) at %s: added %v, want %v (recorded until %s)", i, key, now.Sub(t0), got, want, e.Sub(t0))
		}
		if want {
			ref[key] = until
		}
		maxLen = max(maxLen, mem.Len())
	}
	// About 1000 proofs a second: two windows are about 130,000 entries.
	if maxLen > 140_000 {
		t.Errorf("the store held %d entries, more than two windows' worth", maxLen)
	}
}

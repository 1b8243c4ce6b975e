package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certbind/certbind/testenv/pki"
)

func newEC(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwk marshals one key the way an issuer would publish it.
func jwk(t *testing.T, k jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pub is a public JWK for key with kid.
func pub(t *testing.T, key crypto.PublicKey, kid string) string {
	t.Helper()
	return jwk(t, jose.JSONWebKey{Key: key, KeyID: kid, Use: "sig"})
}

// set wraps JWKs in a JWK Set document.
func set(keys ...string) []byte {
	return []byte(`{"keys":[` + strings.Join(keys, ",") + `]}`)
}

func kids(keys []jose.JSONWebKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.KeyID)
	}
	return out
}

func TestParse(t *testing.T) {
	ec, ec2 := newEC(t), newEC(t)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cert := pki.SelfSigned("partner", pki.Key(ec))
	withX5c := jwk(t, jose.JSONWebKey{Key: ec.Public(), KeyID: "cert", Certificates: []*x509.Certificate{cert.Cert}})

	tests := []struct {
		name     string
		doc      []byte
		wantKIDs []string
		byKID    map[string][]string // kid -> the kids ByKID returns, to check order and duplicates
	}{
		{"one EC key", set(pub(t, ec.Public(), "a")), []string{"a"}, map[string][]string{"a": {"a"}, "b": nil}},
		{"EC, RSA and Ed25519 in document order",
			set(pub(t, rs.Public(), "rsa"), pub(t, ed.Public(), "ed"), pub(t, ec.Public(), "ec")),
			[]string{"rsa", "ed", "ec"}, map[string][]string{"ed": {"ed"}}},
		{"key with x5c", set(withX5c), []string{"cert"}, nil},
		{"duplicate kid keeps both in order", set(pub(t, ec.Public(), "dup"), pub(t, ec2.Public(), "dup")),
			[]string{"dup", "dup"}, map[string][]string{"dup": {"dup", "dup"}}},
		{"key without kid", set(pub(t, ec.Public(), "")), []string{""}, map[string][]string{"": {""}}},
		{"whitespace after the object", append(set(pub(t, ec.Public(), "a")), " \n\t\r"...), []string{"a"}, nil},
		{"unknown members ignored", []byte(`{"other":1,"keys":[` + pub(t, ec.Public(), "a") + `]}`), []string{"a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.doc)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if s.Len() != len(tt.wantKIDs) || !slices.Equal(kids(s.Keys()), tt.wantKIDs) {
				t.Errorf("keys = %q (Len %d), want %q", kids(s.Keys()), s.Len(), tt.wantKIDs)
			}
			for _, k := range s.Keys() {
				if !k.IsPublic() || !k.Valid() {
					t.Errorf("key %q: public %v, valid %v", k.KeyID, k.IsPublic(), k.Valid())
				}
			}
			for kid, want := range tt.byKID {
				if got := kids(s.ByKID(kid)); !slices.Equal(got, want) {
					t.Errorf("ByKID(%q) = %q, want %q", kid, got, want)
				}
			}
		})
	}

	t.Run("keys of unsupported types are skipped and named", func(t *testing.T) {
		// RFC 7517 section 5: implementations SHOULD ignore keys whose kty they do not
		// understand. The usable keys beside them keep working.
		doc := set(`{"kty":"XYZ","kid":"future"}`, pub(t, ec.Public(), "a"),
			`{"kty":"OKP","crv":"X448","kid":"x","x":"AA"}`,
			`{"kty":"EC","crv":"secp256k1","kid":"k1","x":"AA","y":"AA"}`, pub(t, ed.Public(), "b"))
		s, err := Parse(doc)
		if err != nil {
			t.Fatal(err)
		}
		if got := kids(s.Keys()); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("keys = %q, want [a b]", got)
		}
		want := []string{`keys[0]: key type "XYZ" (crv "") not supported`, `keys[2]: key type "OKP" (crv "X448") not supported`,
			`keys[3]: EC curve "secp256k1" not supported`}
		if !slices.Equal(s.Skipped(), want) {
			t.Errorf("Skipped() = %q\nwant        %q", s.Skipped(), want)
		}
		if got := s.ByKID("future"); len(got) != 0 {
			t.Errorf("ByKID(future) = %d keys", len(got))
		}
		if ok, _ := Parse(set(pub(t, ec.Public(), "a"))); len(ok.Skipped()) != 0 {
			t.Errorf("a set of supported keys skipped %q", ok.Skipped())
		}
	})

	t.Run("duplicate kid returns both keys", func(t *testing.T) {
		s, err := Parse(set(pub(t, ec.Public(), "dup"), pub(t, ec2.Public(), "dup")))
		if err != nil {
			t.Fatal(err)
		}
		got := s.ByKID("dup")
		if len(got) != 2 || !ec.PublicKey.Equal(got[0].Key) || !ec2.PublicKey.Equal(got[1].Key) {
			t.Errorf("ByKID(dup) does not hold both keys in document order")
		}
	})
}

func TestParseErrors(t *testing.T) {
	ec, other := newEC(t), newEC(t)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := pub(t, ec.Public(), "good")
	cert := pki.SelfSigned("partner", pki.Key(ec))
	otherCert := pki.SelfSigned("other", pki.Key(other))
	x5cMismatch := jwk(t, jose.JSONWebKey{Key: other.Public(), KeyID: "x", Certificates: []*x509.Certificate{cert.Cert}})
	// x5t#S256 naming another certificate than x5c[0]
	wrongThumb := sha256.Sum256(otherCert.Cert.Raw)
	x5tMismatch := strings.Replace(jwk(t, jose.JSONWebKey{Key: ec.Public(), KeyID: "x", Certificates: []*x509.Certificate{cert.Cert}}),
		`{`, `{"x5t#S256":"`+base64.RawURLEncoding.EncodeToString(wrongThumb[:])+`",`, 1)

	tests := []struct {
		name string
		doc  []byte
		is   error  // errors.Is target, or
		msg  string // the exact error text
	}{
		{"empty", nil, io.EOF, ""},
		{"not JSON", []byte(`keys`), nil, "not a JWK Set: invalid character 'k' looking for beginning of value"},
		{"truncated", []byte(`{"keys":[`), io.ErrUnexpectedEOF, ""},
		{"array", []byte(`[]`), nil, "not a JWK Set: json: cannot unmarshal array into Go value of type struct { Keys []json.RawMessage \"json:\\\"keys\\\"\" }"},
		{"keys not an array", []byte(`{"keys":{}}`), nil, "not a JWK Set: json: cannot unmarshal object into Go struct field .keys of type []json.RawMessage"},
		{"no keys member", []byte(`{}`), ErrNoKeys, ""},
		{"empty keys", []byte(`{"keys":[]}`), ErrNoKeys, ""},
		{"null keys", []byte(`{"keys":null}`), ErrNoKeys, ""},
		{"null document", []byte(`null`), ErrNoKeys, ""},

		{"trailing garbage", append(set(good), " x"...), nil, "not a JWK Set: trailing data after the JSON object"},
		{"trailing second set", append(set(good), set(good)...), nil, "not a JWK Set: trailing data after the JSON object"},
		{"trailing close brace", append(set(good), '}'), nil, "not a JWK Set: trailing data after the JSON object"},
		{"trailing close bracket", append(set(good), ']'), nil, "not a JWK Set: trailing data after the JSON object"},

		{"EC private key", set(good, jwk(t, jose.JSONWebKey{Key: ec, KeyID: "p"})), nil,
			"keys[1]: holds private key material; publish only public keys"},
		{"RSA private key", set(good, good, jwk(t, jose.JSONWebKey{Key: rs, KeyID: "p"})), nil,
			"keys[2]: holds private key material; publish only public keys"},
		{"Ed25519 private key", set(jwk(t, jose.JSONWebKey{Key: ed, KeyID: "p"})), nil,
			"keys[0]: holds private key material; publish only public keys"},
		{"symmetric key", set(good, `{"kty":"oct","kid":"h","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}`), nil,
			"keys[1]: invalid key"},
		{"x5c holds another key", set(good, x5cMismatch), nil,
			"keys[1]: go-jose/go-jose: invalid JWK, public keys in key and x5c fields do not match"},
		{"x5t#S256 names another certificate", set(x5tMismatch), nil,
			"keys[0]: go-jose/go-jose: invalid JWK, x5c thumbprint does not match x5t#S256 value"},
		{"only keys of unsupported types", set(`{"kty":"XYZ","kid":"u"}`, `{"kty":"EC","crv":"secp256k1","kid":"k","x":"AA","y":"AA"}`), ErrNoKeys,
			`jwks: no keys certbind can use (keys[0]: key type "XYZ" (crv "") not supported; keys[1]: EC curve "secp256k1" not supported)`},
		{"supported type beside an unsupported one, malformed", set(`{"kty":"XYZ"}`, `{"kty":"EC","crv":"P-256","kid":"k","x":"AA"}`), nil,
			"keys[1]: go-jose/go-jose: invalid EC key, missing x/y values"},
		{"missing kty", set(`{"kid":"u","x":"AA"}`), nil, "keys[0]: go-jose/go-jose: missing json web key type"},
		{"key not an object", set(`"key"`), nil, "keys[0]: json: cannot unmarshal string into Go value of type jose.rawJSONWebKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.doc)
			if err == nil {
				t.Fatalf("Parse accepted it: %d keys", s.Len())
			}
			if s != nil {
				t.Errorf("Parse returned a set with the error %v", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("error %q\nwant     %q", err, tt.msg)
			}
		})
	}
}

func TestSetCertificatesAndPinned(t *testing.T) {
	root := pki.NewRoot("Root")
	leaf := root.Leaf("leaf")
	self := pki.SelfSigned("self")
	plain := newEC(t)
	doc := set(
		jwk(t, jose.JSONWebKey{Key: self.Key.Public(), KeyID: "self", Certificates: []*x509.Certificate{self.Cert}}),
		pub(t, plain.Public(), "plain"),
		jwk(t, jose.JSONWebKey{Key: leaf.Key.Public(), KeyID: "chain", Certificates: []*x509.Certificate{leaf.Cert, root.Cert}}),
	)
	s, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}

	certs := s.Certificates()
	if len(certs) != 2 || !certs[0].Equal(self.Cert) || !certs[1].Equal(leaf.Cert) {
		t.Fatalf("Certificates() = %d certificates, want x5c[0] of self and chain in order", len(certs))
	}

	tests := []struct {
		name   string
		thumb  [32]byte
		want   *x509.Certificate
		pinned bool
	}{
		{"self-signed x5c[0]", self.Thumbprint(), self.Cert, true},
		{"x5c[0] of a chain", leaf.Thumbprint(), leaf.Cert, true},
		{"x5c[1] is not registered", root.Thumbprint(), nil, false},
		{"unrelated certificate", pki.SelfSigned("stranger").Thumbprint(), nil, false},
		{"zero thumbprint", [32]byte{}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := s.Pinned(tt.thumb)
			if ok != tt.pinned {
				t.Fatalf("Pinned = %v, want %v", ok, tt.pinned)
			}
			if tt.want != nil && !c.Equal(tt.want) {
				t.Errorf("Pinned returned %s, want %s", c.Subject, tt.want.Subject)
			}
			if tt.want == nil && c != nil {
				t.Errorf("Pinned returned %s with false", c.Subject)
			}
		})
	}
}

func TestStatic(t *testing.T) {
	s, err := Parse(set(pub(t, newEC(t).Public(), "a")))
	if err != nil {
		t.Fatal(err)
	}
	got, err := NewStatic(s).Current(t.Context())
	if err != nil || got != s {
		t.Fatalf("Static.Current = %p, %v; want %p, nil", got, err, s)
	}
}

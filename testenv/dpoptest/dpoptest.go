// Package dpoptest is a DPoP client for tests (RFC 9449): a P-256 key, its RFC 7638
// thumbprint (what a token's cnf.jkt holds), and proofs signed with the JOSE library. The
// token hash is computed here, not with package dpop, so tests of dpop do not check it against
// itself.
package dpoptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Holder is a DPoP client's key.
type Holder struct {
	Key *ecdsa.PrivateKey
	JKT string // base64url SHA-256 JWK thumbprint (RFC 7638)
	n   atomic.Uint64
}

// New makes a Holder with a fresh key.
func New(t testing.TB) *Holder {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	th, err := (&jose.JSONWebKey{Key: &k.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &Holder{Key: k, JKT: base64.RawURLEncoding.EncodeToString(th)}
}

// Claims are a valid proof's claims for htm and htu at iat, with the ath of token (none when
// token is ""), and a jti no other call of this Holder gives.
func (h *Holder) Claims(htm, htu, token string, iat time.Time) map[string]any {
	c := map[string]any{"jti": fmt.Sprintf("p-%d", h.n.Add(1)), "htm": htm, "htu": htu, "iat": iat.Unix()}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		c["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return c
}

// Proof signs claims with ES256, the public key embedded, and typ (dpop+jwt unless given).
func (h *Holder) Proof(t testing.TB, claims map[string]any, typ ...string) string {
	t.Helper()
	ty := "dpop+jwt"
	if len(typ) > 0 {
		ty = typ[0]
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: h.Key}, (&jose.SignerOptions{EmbedJWK: true}).WithType(jose.ContentType(ty)))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

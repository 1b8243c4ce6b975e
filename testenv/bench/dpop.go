package bench

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// DPoP is a DPoP client of the fixture: its key, an access token bound to that key (cnf.jkt,
// RFC 9449 section 6) and the proofs it makes for the bound_token request.
type DPoP struct {
	Token string
	JKT   string

	key    *ecdsa.PrivateKey
	header string // the proofs' protected header, base64url: typ, alg and the public jwk
	ath    string
}

// DPoPPath is the URI the proofs are made for: NewRequest's bound_token GET.
const DPoPPath = "/api/orders/42"

// NewDPoP makes a DPoP client: a fresh P-256 key and a token the fixture's issuer binds to it.
func (f *Fixture) NewDPoP() (*DPoP, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("bench: DPoP key: %w", err)
	}
	jwk := jose.JSONWebKey{Key: &key.PublicKey}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("bench: DPoP key thumbprint: %w", err)
	}
	pub, err := jwk.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("bench: DPoP jwk: %w", err)
	}
	header, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(pub)})
	d := &DPoP{JKT: base64.RawURLEncoding.EncodeToString(thumb), key: key, header: base64.RawURLEncoding.EncodeToString(header)}
	if d.Token, err = f.sign(map[string]any{"jkt": d.JKT}, 0); err != nil {
		return nil, err
	}
	ath := sha256.Sum256([]byte(d.Token))
	d.ath = base64.RawURLEncoding.EncodeToString(ath[:])
	return d, nil
}

// Proof is proof number seq for the bound_token request, made at the given time: RFC 9449
// section 4.2, ES256, with the token's ath.
func (d *DPoP) Proof(seq uint64, at time.Time) (string, error) {
	claims, _ := json.Marshal(map[string]any{
		"jti": fmt.Sprintf("bench-proof-%d", seq), "htm": "GET", "htu": "https://" + Host + DPoPPath,
		"iat": at.Unix(), "ath": d.ath,
	})
	return es256(d.key, d.header+"."+base64.RawURLEncoding.EncodeToString(claims))
}

// Request is the bound_token request of c (its certificate, which the DPoP-bound token does not
// need) carrying the DPoP token and proof.
func (d *DPoP) Request(c *Credential, proof string, n uint64) Request {
	r := NewRequest(c, ModeBoundToken, n)
	r.Headers["authorization"] = "DPoP " + d.Token
	r.Headers["dpop"] = proof
	return r
}

// Requests makes n requests with proofs numbered from first, made at the given time, on every
// CPU: each proof is new to the server, as a client's is.
func (d *DPoP) Requests(c *Credential, first uint64, n int, at time.Time) ([]Request, error) {
	out := make([]Request, n)
	err := parallel(n, func(i int) error {
		p, err := d.Proof(first+uint64(i), at)
		out[i] = d.Request(c, p, first+uint64(i))
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

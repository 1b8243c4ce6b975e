package policy

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
)

// Thumbprint is the SHA-256 of a certificate's DER: RFC 8705 section 3.1 `x5t#S256` when
// rendered as base64url without padding, Envoy's XFCC `Hash` when rendered as lower-case hex.
type Thumbprint [32]byte

// ThumbprintOf hashes a certificate's DER.
func ThumbprintOf(der []byte) Thumbprint { return sha256.Sum256(der) }

// String is the x5t#S256 form: base64url, no padding, 43 characters.
func (t Thumbprint) String() string { return base64.RawURLEncoding.EncodeToString(t[:]) }

// Hex is the lower-case hex form Envoy writes in XFCC `Hash`.
func (t Thumbprint) Hex() string { return hex.EncodeToString(t[:]) }

// ParseX5tS256 reads an x5t#S256 value (RFC 8705 section 3.1) that is in canonical form: exactly
// 43 characters of the base64url alphabet, without padding, the unused bits of the last one
// zero. ok is false for anything else, even what a lenient decoder would read as the same 32
// bytes (padded, standard alphabet, hex, line breaks, non-zero unused bits): with lenient
// decoding several strings name one digest. A canonical claim is t.String() of its Thumbprint.
func ParseX5tS256(claim string) (t Thumbprint, ok bool) {
	if len(claim) != 43 {
		return Thumbprint{}, false
	}
	n, err := base64.RawURLEncoding.Strict().Decode(t[:], []byte(claim))
	if err != nil || n != len(t) {
		return Thumbprint{}, false
	}
	return t, true
}

// MatchesX5tS256 reports whether claim is exactly this thumbprint's canonical x5t#S256 string
// (ParseX5tS256), comparing the digests in constant time.
func (t Thumbprint) MatchesX5tS256(claim string) bool {
	c, ok := ParseX5tS256(claim)
	return ok && subtle.ConstantTimeCompare(c[:], t[:]) == 1
}

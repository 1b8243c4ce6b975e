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

// MatchesX5tS256 reports whether claim is exactly this thumbprint's canonical x5t#S256 string.
// The comparison is on the canonical string in constant time: a padded, standard-alphabet, hex
// or otherwise non-canonical claim never matches, even if it decodes to the same bytes (RFC 8705
// section 3.1 fixes the encoding; lenient decoding makes four strings match one digest).
func (t Thumbprint) MatchesX5tS256(claim string) bool {
	want := t.String()
	return len(claim) == len(want) && subtle.ConstantTimeCompare([]byte(claim), []byte(want)) == 1
}

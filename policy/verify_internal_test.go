package policy

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// TestClientCertValue: RFC 9440's Client-Cert value is the DER in standard base64 between
// colons, whatever the length, across clientCertValue's chunk boundaries.
func TestClientCertValue(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 191, 192, 193, 383, 384, 385, 700, 1500} {
		der := bytes.Repeat([]byte{0xfb, 0xef, 0x01}, n)[:n]
		if got, want := clientCertValue(der), ":"+base64.StdEncoding.EncodeToString(der)+":"; got != want {
			t.Errorf("%d bytes: %q, want %q", n, got, want)
		}
	}
}

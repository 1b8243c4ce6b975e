package dpop

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestNonces(t *testing.T) {
	key := bytes.Repeat([]byte{7}, MinNonceKey)
	n, err := NewNonces(key, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	a := n.Issue(t0)
	if a != n.Issue(t0.Add(999*time.Millisecond)) {
		t.Error("two nonces within one second differ")
	}
	if a == n.Issue(t0.Add(time.Second)) {
		t.Error("the next second has the same nonce")
	}
	if len(a) != 32 || strings.Trim(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Errorf("nonce %q is not 32 base64url characters", a)
	}
	other, _ := NewNonces(bytes.Repeat([]byte{8}, MinNonceKey), time.Minute)
	raw, _ := base64.RawURLEncoding.DecodeString(a)
	raw[0] ^= 1 // another second, same MAC
	for _, tc := range []struct {
		name  string
		nonce string
		at    time.Time
		ok    bool
	}{
		{"just issued", a, t0, true},
		{"at the end of its lifetime", a, t0.Add(time.Minute), true},
		{"a replica's clock a second behind", a, t0.Add(-time.Second), true},
		{"past its lifetime", a, t0.Add(time.Minute + time.Second), false},
		{"from the future", a, t0.Add(-2 * time.Second), false},
		{"another key's", other.Issue(t0), t0, false},
		{"its second changed", base64.RawURLEncoding.EncodeToString(raw), t0, false},
		{"empty", "", t0, false},
		{"padded", a + "=", t0, false},
		{"truncated", a[:30], t0, false},
	} {
		err := n.Check(tc.nonce, tc.at)
		if (err == nil) != tc.ok {
			t.Errorf("%s: Check = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && tc.nonce != "" && strings.Contains(err.Error(), tc.nonce) {
			t.Errorf("%s: the error quotes the nonce: %v", tc.name, err)
		}
	}
	if _, err := NewNonces(key[:MinNonceKey-1], time.Minute); err == nil {
		t.Error("a 31-byte key accepted")
	}
	if _, err := NewNonces(key, time.Millisecond); err == nil {
		t.Error("a lifetime under a second accepted")
	}
}

// TestVerifyNonce: with nonces on, a proof needs a current nonce of ours (RFC 9449 section 9),
// and the other checks still apply.
func TestVerifyNonce(t *testing.T) {
	m := newMinter(t)
	n, _ := NewNonces(bytes.Repeat([]byte{7}, MinNonceKey), time.Minute)
	v, err := NewVerifier(Config{Replay: NewMemory(100), Nonces: n})
	if err != nil {
		t.Fatal(err)
	}
	api := Request{Method: "GET", URI: apiURI, AccessToken: token, JKT: m.jkt}
	for _, tc := range []struct {
		name  string
		proof string
		want  Kind
	}{
		{"a current nonce", m.mint(t, m.header(), with(claims("n1"), "nonce", n.Issue(t0.Add(-30*time.Second)))), ""},
		{"no nonce", m.mint(t, m.header(), claims("n2")), KindNonce},
		{"an expired nonce", m.mint(t, m.header(), with(claims("n3"), "nonce", n.Issue(t0.Add(-2*time.Minute)))), KindNonce},
		{"a nonce not ours", m.mint(t, m.header(), with(claims("n4"), "nonce", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")), KindNonce},
		{"a nonce of the wrong type", m.mint(t, m.header(), with(claims("n5"), "nonce", 42)), KindMalformed},
		{"a current nonce, wrong htm", m.mint(t, m.header(), with(with(claims("n6"), "nonce", n.Issue(t0)), "htm", "POST")), KindMethod},
	} {
		_, err := v.Verify(context.Background(), []string{tc.proof}, api, t0)
		if KindOf(err) != tc.want {
			t.Errorf("%s: %v, want kind %q", tc.name, err, tc.want)
		}
	}
}

package xfcc

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	mrand "math/rand"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestZZOpenSSLDiff(t *testing.T) {
	if os.Getenv("XFCC_OPENSSL_DIFF") == "" {
		t.Skip()
	}
	k := key(t)
	r := mrand.New(mrand.NewSource(1))
	oids := []asn1.ObjectIdentifier{oidCN, oidC, oidO, oidOrgID, oidUID44, {1, 2, 3, 4}, {2, 5, 4, 5}, {1, 2, 840, 113549, 1, 9, 1}, {0, 9, 2342, 19200300, 100, 1, 25}, {1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 3}, {2, 5, 4, 72}}
	tags := []int{12, 12, 12, 19, 20, 22, 18, 26, 21, 25, 27, 28, 30, 4, 23}
	chars := []byte(" #,+\"\\<>;=abcXYZ019\x00\x1f\x7f\x80\xc3\xa9\xe2\x82\xac\xff\t")
	var pemAll strings.Builder
	var raws [][]byte
	for n := 0; n < 3000; n++ {
		var rdns [][]attr
		for range 1 + r.Intn(4) {
			var rdn []attr
			for range 1 + r.Intn(3) {
				tag := tags[r.Intn(len(tags))]
				var v []byte
				l := r.Intn(5)
				if tag == 30 || tag == 28 {
					w := 2
					if tag == 28 {
						w = 4
					}
					for range l {
						c := rune(r.Intn(0x300))
						if r.Intn(10) == 0 {
							c = rune(0xd800 + r.Intn(0x800))
						}
						if r.Intn(10) == 0 {
							c = rune(0x1F600)
						}
						if w == 2 {
							v = append(v, byte(c>>8), byte(c))
						} else {
							v = append(v, byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
						}
					}
				} else {
					for range l {
						v = append(v, chars[r.Intn(len(chars))])
					}
				}
				a := attr{oid: oids[r.Intn(len(oids))], tag: tag, value: string(v)}
				if r.Intn(30) == 0 {
					a.class = asn1.ClassContextSpecific
				}
				rdn = append(rdn, a)
			}
			rdns = append(rdns, rdn)
		}
		raw := rawName(t, rdns...)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(n + 1)), RawSubject: raw, RawIssuer: raw}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		pemAll.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		raws = append(raws, raw)
	}
	// one openssl call per cert is slow; use storeutl? do per-cert.
	mismatch := 0
	blocks := strings.SplitAfter(pemAll.String(), "-----END CERTIFICATE-----\n")
	for i, raw := range raws {
		cmd := exec.Command("openssl", "x509", "-noout", "-subject", "-nameopt", "RFC2253")
		cmd.Stdin = strings.NewReader(blocks[i])
		out, err := cmd.CombinedOutput()
		got, gerr := FormatSubjectOpenSSL(raw)
		if err != nil {
			if gerr == nil {
				t.Logf("openssl failed, we did not: %q -> %q: %s", raw, got, out)
			}
			continue
		}
		want := strings.TrimSuffix(strings.TrimPrefix(string(out), "subject="), "\n")
		if gerr != nil {
			if !strings.HasPrefix(want, got) {
				t.Logf("we failed (%v) partial %q, openssl %q", gerr, got, want)
			}
			continue
		}
		if got != want {
			mismatch++
			if mismatch < 20 {
				t.Errorf("raw %x\n got  %q\n want %q", raw, got, want)
			}
		}
	}
	t.Logf("%d names, %d mismatches", len(raws), mismatch)
}

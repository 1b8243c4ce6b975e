package pki

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
)

var attrOIDs = map[string]asn1.ObjectIdentifier{
	"CN":           {2, 5, 4, 3},
	"SERIALNUMBER": {2, 5, 4, 5},
	"C":            {2, 5, 4, 6},
	"L":            {2, 5, 4, 7},
	"ST":           {2, 5, 4, 8},
	"O":            {2, 5, 4, 10},
	"OU":           {2, 5, 4, 11},
	"DC":           {0, 9, 2342, 19200300, 100, 1, 25},
	"UID":          {0, 9, 2342, 19200300, 100, 1, 1},
	"EMAILADDRESS": {1, 2, 840, 113549, 1, 9, 1},
}

// rawSubject encodes a simple RFC 4514 string (most specific RDN first; '\' escapes a single
// character; '+' joins a multi-valued RDN) as a DER RDNSequence. It is a test helper, not a
// general DN parser: certbind's own parser lives in policy/dn.
func rawSubject(s string) ([]byte, error) {
	var rdns pkix.RDNSequence
	for _, rdnText := range splitUnescaped(s, ',') {
		var rdn pkix.RelativeDistinguishedNameSET
		for _, ava := range splitUnescaped(rdnText, '+') {
			k, v, ok := strings.Cut(ava, "=")
			if !ok {
				return nil, fmt.Errorf("pki: subject %q: %q has no '='", s, ava)
			}
			oid, known := attrOIDs[strings.ToUpper(strings.TrimSpace(k))]
			if !known {
				return nil, fmt.Errorf("pki: subject %q: unknown attribute %q", s, k)
			}
			rdn = append(rdn, pkix.AttributeTypeAndValue{Type: oid, Value: unescape(v)})
		}
		rdns = append(pkix.RDNSequence{rdn}, rdns...)
	}
	return asn1.Marshal(rdns)
}

func splitUnescaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

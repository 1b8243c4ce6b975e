package dn

import (
	"encoding/asn1"
	"strconv"
	"strings"
)

// rule is the equality matching rule of an attribute type.
type rule uint8

const (
	// exactMatch compares decoded strings byte for byte. It is used for
	// attribute types this package does not know: RFC 4517 gives no rule
	// for them, and guessing a looser one could match what it should not.
	exactMatch rule = iota
	// caseIgnoreMatch is RFC 4517 §4.2.11 as narrowed in match.go.
	caseIgnoreMatch
	// caseIgnoreIA5Match is RFC 4517 §4.2.13: ASCII case folding only.
	caseIgnoreIA5Match
)

// attrType is an attribute type this package knows by name.
type attrType struct {
	oid   string // DER content octets of the OBJECT IDENTIFIER
	name  string // name written by String, as OpenSSL -nameopt RFC2253 writes it
	rule  rule
	alias []string
}

// knownTypes lists the attribute types accepted by name in Parse. Names and
// rules follow RFC 4514 §3, RFC 4519, RFC 4524, RFC 2985 and OpenSSL's
// object names. SN is surname (RFC 4519 §2.32), not serialNumber.
var knownTypes = []attrType{
	{oid: mustOID("2.5.4.3"), name: "CN", rule: caseIgnoreMatch, alias: []string{"commonName"}},
	{oid: mustOID("2.5.4.4"), name: "SN", rule: caseIgnoreMatch, alias: []string{"surname"}},
	{oid: mustOID("2.5.4.5"), name: "serialNumber", rule: caseIgnoreMatch},
	{oid: mustOID("2.5.4.6"), name: "C", rule: caseIgnoreMatch, alias: []string{"countryName"}},
	{oid: mustOID("2.5.4.7"), name: "L", rule: caseIgnoreMatch, alias: []string{"localityName"}},
	{oid: mustOID("2.5.4.8"), name: "ST", rule: caseIgnoreMatch, alias: []string{"stateOrProvinceName"}},
	{oid: mustOID("2.5.4.9"), name: "STREET", rule: caseIgnoreMatch, alias: []string{"streetAddress"}},
	{oid: mustOID("2.5.4.10"), name: "O", rule: caseIgnoreMatch, alias: []string{"organizationName"}},
	{oid: mustOID("2.5.4.11"), name: "OU", rule: caseIgnoreMatch, alias: []string{"organizationalUnitName"}},
	{oid: mustOID("2.5.4.12"), name: "title", rule: caseIgnoreMatch},
	{oid: mustOID("2.5.4.13"), name: "description", rule: caseIgnoreMatch},
	{oid: mustOID("2.5.4.15"), name: "businessCategory", rule: caseIgnoreMatch},
	{oid: mustOID("2.5.4.17"), name: "postalCode", rule: caseIgnoreMatch},
	{oid: mustOID("2.5.4.18"), name: "postOfficeBox", rule: caseIgnoreMatch},
	{oid: mustOID("2.5.4.19"), name: "physicalDeliveryOfficeName", rule: caseIgnoreMatch},
	{oid: mustOID("2.5.4.41"), name: "name", rule: caseIgnoreMatch},
	{oid: mustOID("2.5.4.42"), name: "GN", rule: caseIgnoreMatch, alias: []string{"givenName"}},
	{oid: mustOID("2.5.4.43"), name: "initials", rule: caseIgnoreMatch},
	{oid: mustOID("2.5.4.44"), name: "generationQualifier", rule: caseIgnoreMatch},
	{oid: mustOID("2.5.4.46"), name: "dnQualifier", rule: caseIgnoreMatch},
	{oid: mustOID("2.5.4.51"), name: "houseIdentifier", rule: caseIgnoreMatch},
	{oid: mustOID("2.5.4.65"), name: "pseudonym", rule: caseIgnoreMatch},
	{oid: mustOID("2.5.4.97"), name: "organizationIdentifier", rule: caseIgnoreMatch},
	{oid: mustOID("0.9.2342.19200300.100.1.1"), name: "UID", rule: caseIgnoreMatch, alias: []string{"userId"}},
	{oid: mustOID("0.9.2342.19200300.100.1.3"), name: "mail", rule: caseIgnoreIA5Match, alias: []string{"rfc822Mailbox"}},
	{oid: mustOID("0.9.2342.19200300.100.1.25"), name: "DC", rule: caseIgnoreIA5Match, alias: []string{"domainComponent"}},
	{oid: mustOID("1.2.840.113549.1.9.1"), name: "emailAddress", rule: caseIgnoreIA5Match, alias: []string{"E"}},
	{oid: mustOID("1.2.840.113549.1.9.2"), name: "unstructuredName", rule: caseIgnoreMatch},
	{oid: mustOID("1.2.840.113549.1.9.8"), name: "unstructuredAddress", rule: caseIgnoreMatch},
	{oid: mustOID("1.3.6.1.4.1.311.60.2.1.1"), name: "jurisdictionL", rule: caseIgnoreMatch, alias: []string{"jurisdictionLocalityName"}},
	{oid: mustOID("1.3.6.1.4.1.311.60.2.1.2"), name: "jurisdictionST", rule: caseIgnoreMatch, alias: []string{"jurisdictionStateOrProvinceName"}},
	{oid: mustOID("1.3.6.1.4.1.311.60.2.1.3"), name: "jurisdictionC", rule: caseIgnoreMatch, alias: []string{"jurisdictionCountryName"}},
}

var (
	typeByName = indexByName(knownTypes) // lower-case name -> type
	typeByOID  = indexByOID(knownTypes)  // DER content octets -> type
)

func indexByName(types []attrType) map[string]*attrType {
	m := make(map[string]*attrType)
	for i := range types {
		t := &types[i]
		for _, n := range append([]string{t.name}, t.alias...) {
			m[strings.ToLower(n)] = t
		}
	}
	return m
}

func indexByOID(types []attrType) map[string]*attrType {
	m := make(map[string]*attrType, len(types))
	for i := range types {
		m[types[i].oid] = &types[i]
	}
	return m
}

// ruleOf returns the matching rule for an attribute type given as DER
// content octets.
func ruleOf(oid string) rule {
	if t := typeByOID[oid]; t != nil {
		return t.rule
	}
	return exactMatch
}

func mustOID(dotted string) string {
	oid, ok := encodeOID(dotted)
	if !ok {
		panic("dn: bad OID in table: " + dotted)
	}
	return oid
}

// maxArc bounds every encoded subidentifier, as crypto/x509 (via cryptobyte)
// does: an OID it cannot parse never reaches us in a certificate.
const maxArc = 1<<31 - 1

// encodeOID returns the DER content octets of a dotted-decimal OID written
// as RFC 4512 §1.4 numericoid (no leading zeros, at least two arcs).
func encodeOID(dotted string) (string, bool) {
	parts := strings.Split(dotted, ".")
	if len(parts) < 2 {
		return "", false
	}
	arcs := make([]int, len(parts))
	for i, p := range parts {
		if p == "" || len(p) > 10 || (len(p) > 1 && p[0] == '0') {
			return "", false
		}
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > maxArc {
			return "", false
		}
		arcs[i] = v
	}
	if arcs[0] > 2 || (arcs[0] < 2 && arcs[1] >= 40) || arcs[1] > maxArc-80 {
		return "", false
	}
	out := appendBase128(nil, arcs[0]*40+arcs[1])
	for _, a := range arcs[2:] {
		out = appendBase128(out, a)
	}
	return string(out), true
}

func appendBase128(b []byte, v int) []byte {
	n := 1
	for t := v >> 7; t > 0; t >>= 7 {
		n++
	}
	for i := n - 1; i >= 0; i-- {
		c := byte(v>>(7*i)) & 0x7f
		if i > 0 {
			c |= 0x80
		}
		b = append(b, c)
	}
	return b
}

// validOID reports whether content is a DER-minimal OBJECT IDENTIFIER whose
// subidentifiers all fit in 31 bits.
func validOID(content string) bool {
	if content == "" || content[len(content)-1]&0x80 != 0 {
		return false
	}
	v := 0
	start := true
	for i := 0; i < len(content); i++ {
		c := content[i]
		if start && c == 0x80 {
			return false // X.690 §8.19.2: not minimal
		}
		if v >= 1<<24 {
			return false
		}
		v = v<<7 | int(c&0x7f)
		start = c&0x80 == 0
		if start {
			v = 0
		}
	}
	return true
}

// decodeOID converts validated DER content octets to an ObjectIdentifier.
func decodeOID(content string) asn1.ObjectIdentifier {
	var oid asn1.ObjectIdentifier
	v := 0
	for i := 0; i < len(content); i++ {
		v = v<<7 | int(content[i]&0x7f)
		if content[i]&0x80 != 0 {
			continue
		}
		if oid == nil {
			first := min(v/40, 2)
			oid = append(oid, first, v-40*first)
		} else {
			oid = append(oid, v)
		}
		v = 0
	}
	return oid
}

package dn

import (
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors, checked with errors.Is. Returned errors wrap them with
// the position of the problem.
var (
	// ErrEmpty: the string holds no RDN at all.
	ErrEmpty = errors.New("dn: empty distinguished name")
	// ErrSyntax: the string is not RFC 4514 as this package accepts it, or an
	// RDN repeats an attribute type.
	ErrSyntax = errors.New("dn: syntax error")
	// ErrUnknownAttribute: an attribute type name this package does not know.
	// Any type can still be written as a dotted OID.
	ErrUnknownAttribute = errors.New("dn: unknown attribute type")
	// ErrNUL: a value contains U+0000. Such a value never matches anything.
	ErrNUL = errors.New("dn: NUL in attribute value")
	// ErrEncoding: malformed DER, trailing data, a value that is not a
	// character string, invalid UTF-8, or a character its string type forbids.
	ErrEncoding = errors.New("dn: invalid encoding")
)

// posError carries the byte position of a problem and the sentinel it wraps.
type posError struct {
	where string // "position" in an RFC 4514 string, "offset" in DER
	pos   int
	msg   string
	kind  error
}

func (e *posError) Error() string { return fmt.Sprintf("dn: %s %d: %s", e.where, e.pos, e.msg) }
func (e *posError) Unwrap() error { return e.kind }

// Name is a parsed distinguished name: RDNs in ASN.1 order (least specific
// first, as in the certificate), each RDN a set of attributes. The zero Name
// has no RDNs. A Name is immutable and safe for concurrent use.
type Name struct {
	attrs []attr // all attributes, RDN after RDN, in ASN.1 order
	ends  []int  // ends[i] is the index in attrs just past RDN i
}

// Attribute is one AttributeTypeAndValue of an RDN.
type Attribute struct {
	Type  asn1.ObjectIdentifier
	Value string // decoded to a Go string (UTF-8), whatever its ASN.1 string type
}

type attr struct {
	oid   string // DER content octets of the attribute type
	value string
	rule  rule // derived from oid, stored to keep Equal free of lookups
}

func (n Name) rdn(i int) []attr {
	start := 0
	if i > 0 {
		start = n.ends[i-1]
	}
	return n.attrs[start:n.ends[i]]
}

// RDNs returns the RDNs in ASN.1 order (least specific first). Attributes of
// a multi-valued RDN are in the order they were parsed.
func (n Name) RDNs() [][]Attribute {
	out := make([][]Attribute, len(n.ends))
	for i := range out {
		r := n.rdn(i)
		out[i] = make([]Attribute, len(r))
		for j, a := range r {
			out[i][j] = Attribute{Type: decodeOID(a.oid), Value: a.value}
		}
	}
	return out
}

// Equal reports whether n and o match under distinguishedNameMatch
// (RFC 4517 §4.2.15): the same number of RDNs in the same order, each pair
// of RDNs holding the same attributes regardless of their order, and values
// equal under their type's equality rule. See the package documentation.
func (n Name) Equal(o Name) bool {
	if len(n.ends) != len(o.ends) || len(n.attrs) != len(o.attrs) {
		return false
	}
	start := 0
	for i, end := range n.ends {
		if o.ends[i] != end || !rdnEqual(n.attrs[start:end], o.attrs[start:end]) {
			return false
		}
		start = end
	}
	return true
}

// Within reports whether n is within the subtree rooted at base, as a
// directoryName name constraint asks (RFC 5280 §4.2.1.10, §7.1): base's RDNs
// are the first RDNs of n in ASN.1 order (most significant first), each pair
// of RDNs matched as Equal matches them. Every name is within the empty base
// (the zero Name), and n is within itself; a reversed or reordered name is
// not within its original.
func (n Name) Within(base Name) bool {
	if len(base.ends) > len(n.ends) {
		return false
	}
	start := 0
	for i, end := range base.ends {
		// Equal RDNs so far have the same sizes, so both names' RDN i starts at start.
		if n.ends[i] != end || !rdnEqual(base.attrs[start:end], n.attrs[start:end]) {
			return false
		}
		start = end
	}
	return true
}

// rdnEqual compares two RDNs as sets. Value equality is an equivalence
// relation, so pairing each attribute with the first unused equal one is
// exact even when a type repeats inside an RDN.
func rdnEqual(a, b []attr) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 1 {
		return a[0].equal(b[0])
	}
	var buf [16]bool
	used := buf[:]
	if len(b) > len(buf) {
		used = make([]bool, len(b))
	}
	for _, x := range a {
		j := 0
		for j < len(b) && (used[j] || !x.equal(b[j])) {
			j++
		}
		if j == len(b) {
			return false
		}
		used[j] = true
	}
	return true
}

func (a attr) equal(b attr) bool {
	return a.oid == b.oid && a.rule.equal(a.value, b.value)
}

// String renders n as RFC 4514 (most specific RDN first) for logs and error
// messages. Known types use the names OpenSSL's -nameopt RFC2253 writes;
// other types are dotted OIDs with the value as #hex of a UTF8String
// (RFC 4514 §2.4). Control and other non-printable characters are written
// as \XX escapes, so the result is a single printable line.
// Parse(n.String()) is Equal to n whenever n could have come from Parse.
func (n Name) String() string {
	var b strings.Builder
	for i := len(n.ends) - 1; i >= 0; i-- {
		if i != len(n.ends)-1 {
			b.WriteByte(',')
		}
		for j, a := range n.rdn(i) {
			if j > 0 {
				b.WriteByte('+')
			}
			a.writeTo(&b)
		}
	}
	return b.String()
}

func (a attr) writeTo(b *strings.Builder) {
	if t := typeByOID[a.oid]; t != nil {
		b.WriteString(t.name)
		b.WriteByte('=')
		writeEscaped(b, a.value)
		return
	}
	b.WriteString(decodeOID(a.oid).String())
	b.WriteString("=#")
	der := appendLength([]byte{asn1.TagUTF8String}, len(a.value))
	b.WriteString(hex.EncodeToString(append(der, a.value...)))
}

// writeEscaped writes an RFC 4514 §2.4 string.
func writeEscaped(b *strings.Builder, v string) {
	for i, r := range v {
		switch {
		case strings.ContainsRune(`"+,;<>\`, r),
			r == '#' && i == 0,
			r == ' ' && (i == 0 || i == len(v)-1):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == ' ' || unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			var buf [utf8.UTFMax]byte
			for _, c := range buf[:utf8.EncodeRune(buf[:], r)] {
				fmt.Fprintf(b, `\%02X`, c)
			}
		}
	}
}

// appendLength appends a DER length.
func appendLength(b []byte, n int) []byte {
	if n < 0x80 {
		return append(b, byte(n))
	}
	var l []byte
	for ; n > 0; n >>= 8 {
		l = append([]byte{byte(n)}, l...)
	}
	return append(append(b, 0x80|byte(len(l))), l...)
}

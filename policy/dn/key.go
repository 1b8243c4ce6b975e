package dn

import (
	"encoding/binary"
	"slices"
	"strings"
	"unicode/utf8"
)

// Key returns a string that two Names share exactly when they are Equal: each value prepared
// by its type's matching rule (match.go), each RDN's attributes sorted, every part
// length-prefixed. It lets a registry of names be a map, looked up once per certificate
// instead of compared with every registered name.
func (n Name) Key() string {
	var b []byte
	var attrs []string
	for i := range n.ends {
		r := n.rdn(i)
		attrs = attrs[:0]
		for _, a := range r {
			attrs = append(attrs, a.key())
		}
		slices.Sort(attrs) // an RDN is a set
		b = binary.AppendUvarint(b, uint64(len(attrs)))
		for _, a := range attrs {
			b = binary.AppendUvarint(b, uint64(len(a)))
			b = append(b, a...)
		}
	}
	return string(b)
}

// key is the attribute's type and prepared value, length-prefixed.
func (a attr) key() string {
	var b strings.Builder
	var l [binary.MaxVarintLen64]byte
	b.Write(l[:binary.PutUvarint(l[:], uint64(len(a.oid)))])
	b.WriteString(a.oid)
	if a.rule == exactMatch {
		b.WriteString(a.value)
		return b.String()
	}
	p := prepare(a.value, a.rule)
	var buf [utf8.UTFMax]byte
	for r := p.next(); r >= 0; r = p.next() {
		b.Write(buf[:utf8.EncodeRune(buf[:], r)])
	}
	return b.String()
}

package dn

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Parse parses an RFC 4514 string, most specific RDN first, as written by
// OpenSSL -nameopt RFC2253 or Java's X500Principal.getName().
//
// Attribute types are names (case-insensitive; see the package
// documentation for the list) or dotted OIDs. Values are RFC 4514 strings
// with \-escapes of special characters and \XX hex pairs forming UTF-8, or
// #hex of the DER encoding of a character string. Spaces (U+0020 only)
// around ',', '+' and '=' and at either end are insignificant; an escaped
// space is part of the value.
//
// Parse rejects, with the byte position in the error:
//   - an empty or all-space string (ErrEmpty);
//   - an unknown attribute name (ErrUnknownAttribute);
//   - unescaped '"', ';', '<', '>' or a trailing '\', a bad escape, odd or
//     bad hex, an empty value, a missing '=', a ';' used as RDN separator
//     (RFC 1779/2253 legacy), the OpenSSL slash form "/C=US/O=...", or an
//     attribute type repeated inside one RDN (ErrSyntax);
//   - a NUL byte, raw, escaped (\00) or inside #hex (ErrNUL);
//   - invalid UTF-8, or #hex that is not a DER character string (ErrEncoding).
func Parse(s string) (Name, error) {
	if strings.Trim(s, " ") == "" {
		return Name{}, ErrEmpty
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return Name{}, parseError(ErrNUL, i, "NUL byte")
	}
	if !utf8.ValidString(s) {
		i := 0
		for i < len(s) {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			i += n
		}
		return Name{}, parseError(ErrEncoding, i, "invalid UTF-8")
	}
	p := parser{s: s}
	p.skipSpaces()
	if p.peek() == '/' {
		return Name{}, parseError(ErrSyntax, p.i,
			"OpenSSL slash form (/C=US/O=...) is not RFC 4514; write the RDNs most specific first, separated by ',' (CN=...,O=...,C=US)")
	}

	// RDNs are written most specific first; a Name keeps ASN.1 order.
	var rdns [][]attr
	sep := -1
	for {
		rdn, err := p.rdn(sep)
		if err != nil {
			return Name{}, err
		}
		rdns = append(rdns, rdn)
		if p.i == len(s) {
			break
		}
		sep = p.i // ','
		p.i++
	}
	n := Name{ends: make([]int, 0, len(rdns))}
	for i := len(rdns) - 1; i >= 0; i-- {
		n.attrs = append(n.attrs, rdns[i]...)
		n.ends = append(n.ends, len(n.attrs))
	}
	return n, nil
}

type parser struct {
	s string
	i int
}

func (p *parser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *parser) skipSpaces() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

// rdn parses one RDN and stops at the ',' after it or at the end. sep is
// the position of the ',' before it, or -1.
func (p *parser) rdn(sep int) ([]attr, error) {
	var rdn []attr
	for {
		start := p.i
		a, err := p.attribute(sep)
		if err != nil {
			return nil, err
		}
		for _, b := range rdn {
			if b.oid == a.oid {
				return nil, parseError(ErrSyntax, start,
					"attribute type %s repeated in one RDN (Go's pkix.Name.String joins separate RDNs with '+'; take the subject from OpenSSL or FromDER(...).String())",
					typeLabel(a.oid))
			}
		}
		rdn = append(rdn, a)
		p.skipSpaces()
		switch c := p.peek(); {
		case p.i == len(p.s) || c == ',':
			return rdn, nil
		case c == '+':
			sep = p.i
			p.i++
		case c == ';':
			return nil, parseError(ErrSyntax, p.i, "';' as RDN separator is RFC 1779/2253 legacy; use ','")
		default:
			return nil, parseError(ErrSyntax, p.i, "unexpected %q after value", c)
		}
	}
}

// attribute parses type '=' value. sep is the position of the ',' or '+'
// before it, or -1.
func (p *parser) attribute(sep int) (attr, error) {
	p.skipSpaces()
	start := p.i
	if !p.attributeType() {
		if sep >= 0 && p.i < len(p.s) {
			return attr{}, unescapedSeparator(p.s[sep], sep)
		}
		return attr{}, parseError(ErrSyntax, p.i, "expected attribute type")
	}
	typ := p.s[start:p.i]
	p.skipSpaces()
	if p.peek() != '=' {
		if sep >= 0 {
			return attr{}, unescapedSeparator(p.s[sep], sep)
		}
		return attr{}, parseError(ErrSyntax, p.i, "expected '=' after attribute type %q", typ)
	}
	p.i++
	oid, err := lookupType(typ, start)
	if err != nil {
		return attr{}, err
	}
	p.skipSpaces()
	valStart := p.i
	var v string
	if p.peek() == '#' {
		v, err = p.hexValue()
	} else {
		v, err = p.stringValue()
	}
	if err != nil {
		return attr{}, err
	}
	if v == "" {
		return attr{}, parseError(ErrSyntax, valStart, "empty value for %s", typeLabel(oid))
	}
	return attr{oid: oid, value: v, rule: ruleOf(oid)}, nil
}

// attributeType consumes a name (RFC 4512 descr) or something shaped like
// a dotted OID, and reports whether there was one.
func (p *parser) attributeType() bool {
	start := p.i
	switch c := p.peek(); {
	case isAlpha(c):
		for p.i < len(p.s) && (isAlpha(p.s[p.i]) || isDigit(p.s[p.i]) || p.s[p.i] == '-') {
			p.i++
		}
	case isDigit(c):
		for p.i < len(p.s) && (isDigit(p.s[p.i]) || p.s[p.i] == '.') {
			p.i++
		}
	}
	return p.i > start
}

// lookupType returns the DER content octets of the OID named by typ, found
// at position pos.
func lookupType(typ string, pos int) (string, error) {
	if isDigit(typ[0]) {
		oid, ok := encodeOID(typ)
		if !ok {
			return "", parseError(ErrSyntax, pos, "invalid OID %q", typ)
		}
		return oid, nil
	}
	t := typeByName[strings.ToLower(typ)]
	if t == nil {
		return "", parseError(ErrUnknownAttribute, pos, "unknown attribute type %q (write it as a dotted OID)", typ)
	}
	return t.oid, nil
}

func unescapedSeparator(c byte, pos int) error {
	return parseError(ErrSyntax, pos, "unescaped %q not followed by an attribute type and '=' (inside a value, escape it as '\\%c')", c, c)
}

// stringValue parses an RFC 4514 §3 string up to an unescaped ',' or '+' or
// the end. Unescaped trailing spaces are dropped.
func (p *parser) stringValue() (string, error) {
	start := p.i
	var b []byte
	keep := 0 // len(b) up to the last significant byte
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case ',', '+':
			return utf8Value(b[:keep], start)
		case '"', ';', '<', '>':
			msg := fmt.Sprintf("unescaped %q in value (escape it as '\\%c')", c, c)
			switch c {
			case '"':
				msg += "; quoted values are RFC 1779 legacy"
			case ';':
				msg += "; ';' as RDN separator is RFC 1779/2253 legacy, use ','"
			}
			return "", parseError(ErrSyntax, p.i, "%s", msg)
		case '\\':
			if p.i+1 == len(p.s) {
				return "", parseError(ErrSyntax, p.i, "unterminated escape")
			}
			d := p.s[p.i+1]
			switch {
			case isHex(d):
				if p.i+2 == len(p.s) || !isHex(p.s[p.i+2]) {
					return "", parseError(ErrSyntax, p.i, "bad hex escape (want \\XX)")
				}
				var xb [1]byte
				hex.Decode(xb[:], []byte(p.s[p.i+1:p.i+3])) // both digits checked above
				x := xb[0]
				if x == 0 {
					return "", parseError(ErrNUL, p.i, "escaped NUL (\\00)")
				}
				b = append(b, x)
				p.i += 3
			case strings.IndexByte(`"+,;<>\ #=`, d) >= 0:
				b = append(b, d)
				p.i += 2
			default:
				return "", parseError(ErrSyntax, p.i, "invalid escape \\%c", d)
			}
			keep = len(b)
		default:
			b = append(b, c)
			p.i++
			if c != ' ' {
				keep = len(b)
			}
		}
	}
	return utf8Value(b[:keep], start)
}

// utf8Value checks that the unescaped bytes of the value at start are UTF-8.
func utf8Value(b []byte, start int) (string, error) {
	if !utf8.Valid(b) {
		return "", parseError(ErrEncoding, start, "hex escapes in value do not form UTF-8")
	}
	return string(b), nil
}

// hexValue parses '#' followed by hex pairs holding the DER encoding of a
// character string (RFC 4514 §2.4).
func (p *parser) hexValue() (string, error) {
	start := p.i
	p.i++
	for p.i < len(p.s) && isHex(p.s[p.i]) {
		p.i++
	}
	digits := p.s[start+1 : p.i]
	if digits == "" {
		return "", parseError(ErrSyntax, start, "'#' without hex (escape a leading '#' as '\\#')")
	}
	if len(digits)%2 != 0 {
		return "", parseError(ErrSyntax, start, "odd number of hex digits after '#'")
	}
	der, err := hex.DecodeString(digits)
	if err != nil {
		return "", parseError(ErrSyntax, start, "bad hex after '#'")
	}
	tag, vs, ve, err := readTLV(string(der), 0, len(der))
	if err != nil {
		msg := err.Error()
		var pe *posError
		if errors.As(err, &pe) {
			msg = pe.msg
		}
		return "", parseError(ErrEncoding, start, "#hex value is not DER: %s", msg)
	}
	if ve != len(der) {
		return "", parseError(ErrEncoding, start, "trailing data after #hex value")
	}
	v, verr := decodeString(tag, string(der[vs:ve]))
	if verr != nil {
		return "", parseError(verr.kind, start, "#hex value: %s", verr.msg)
	}
	return v, nil
}

func parseError(kind error, pos int, format string, args ...any) error {
	return &posError{where: "position", pos: pos, msg: fmt.Sprintf(format, args...), kind: kind}
}

// typeLabel names an attribute type in messages.
func typeLabel(oid string) string {
	if t := typeByOID[oid]; t != nil {
		return t.name
	}
	return decodeOID(oid).String()
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

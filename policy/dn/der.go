package dn

import (
	"encoding/asn1"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Universal tags encoding/asn1 has no constants for.
const (
	tagVisibleString   = 26
	tagUniversalString = 28

	tagSequence = 0x20 | asn1.TagSequence // constructed
	tagSet      = 0x20 | asn1.TagSet
)

// FromDER parses a DER RDNSequence (RFC 5280 §4.1.2.4), such as
// x509.Certificate.RawSubject. Multi-valued RDNs, repeated attributes and
// the order of everything are kept exactly as encoded. Values must be
// character strings (UTF8String, PrintableString, IA5String, T61String as
// Latin-1, BMPString, UniversalString, NumericString, VisibleString) valid
// for their type; a NUL anywhere in a value is ErrNUL; anything else
// malformed, including trailing data, is ErrEncoding.
//
// FromDER accepts every subject crypto/x509 accepts except those with a NUL
// (a BMPString terminator included), an empty RDN, or data after an
// attribute value. An empty RDNSequence gives a Name without RDNs, and
// empty values are kept; Parse returns neither, so such a subject never
// equals a registered name.
func FromDER(raw []byte) (Name, error) {
	s := string(raw) // one copy; values are substrings of it where possible
	tag, body, end, err := readTLV(s, 0, len(s))
	if err != nil {
		return Name{}, err
	}
	if tag != tagSequence {
		return Name{}, derError(ErrEncoding, 0, "expected SEQUENCE, got tag 0x%02x", tag)
	}
	if end != len(s) {
		return Name{}, derError(ErrEncoding, end, "trailing data after RDNSequence")
	}
	n := Name{attrs: make([]attr, 0, 8), ends: make([]int, 0, 8)}
	for i := body; i < end; {
		tag, setStart, setEnd, err := readTLV(s, i, end)
		if err != nil {
			return Name{}, err
		}
		if tag != tagSet {
			return Name{}, derError(ErrEncoding, i, "expected RDN SET, got tag 0x%02x", tag)
		}
		if setStart == setEnd {
			return Name{}, derError(ErrEncoding, i, "empty RDN")
		}
		for j := setStart; j < setEnd; {
			a, next, err := readAttr(s, j, setEnd)
			if err != nil {
				return Name{}, err
			}
			n.attrs = append(n.attrs, a)
			j = next
		}
		n.ends = append(n.ends, len(n.attrs))
		i = setEnd
	}
	return n, nil
}

// readAttr reads the AttributeTypeAndValue at s[i:end].
func readAttr(s string, i, end int) (attr, int, error) {
	tag, start, stop, err := readTLV(s, i, end)
	if err != nil {
		return attr{}, 0, err
	}
	if tag != tagSequence {
		return attr{}, 0, derError(ErrEncoding, i, "expected AttributeTypeAndValue SEQUENCE, got tag 0x%02x", tag)
	}
	tag, oidStart, oidEnd, err := readTLV(s, start, stop)
	if err != nil {
		return attr{}, 0, err
	}
	if tag != asn1.TagOID || !validOID(s[oidStart:oidEnd]) {
		return attr{}, 0, derError(ErrEncoding, start, "invalid attribute type OID")
	}
	tag, valStart, valEnd, err := readTLV(s, oidEnd, stop)
	if err != nil {
		return attr{}, 0, err
	}
	if valEnd != stop {
		return attr{}, 0, derError(ErrEncoding, valEnd, "trailing data after attribute value")
	}
	v, verr := decodeString(tag, s[valStart:valEnd])
	if verr != nil {
		return attr{}, 0, derError(verr.kind, oidEnd, "%s", verr.msg)
	}
	oid := s[oidStart:oidEnd]
	return attr{oid: oid, value: v, rule: ruleOf(oid)}, stop, nil
}

// readTLV reads one DER element at s[i:end], returning its tag and the
// bounds of its contents. Only low tag numbers and minimal definite lengths
// are accepted.
func readTLV(s string, i, end int) (tag byte, start, stop int, err error) {
	if end-i < 2 {
		return 0, 0, 0, derError(ErrEncoding, i, "truncated element")
	}
	tag = s[i]
	if tag&0x1f == 0x1f {
		return 0, 0, 0, derError(ErrEncoding, i, "high tag number form")
	}
	n, j := int(s[i+1]), i+2
	if n&0x80 != 0 {
		size := n & 0x7f
		switch {
		case size == 0:
			return 0, 0, 0, derError(ErrEncoding, i, "indefinite length")
		case size > 3:
			return 0, 0, 0, derError(ErrEncoding, i, "length too large")
		case end-j < size:
			return 0, 0, 0, derError(ErrEncoding, i, "truncated length")
		case s[j] == 0:
			return 0, 0, 0, derError(ErrEncoding, i, "non-minimal length")
		}
		n = 0
		for k := range size {
			n = n<<8 | int(s[j+k])
		}
		j += size
		if n < 0x80 {
			return 0, 0, 0, derError(ErrEncoding, i, "non-minimal length")
		}
	}
	if n > end-j {
		return 0, 0, 0, derError(ErrEncoding, i, "truncated element")
	}
	return tag, j, j + n, nil
}

// valueError is a problem with a value, before its position is known.
type valueError struct {
	kind error // ErrNUL or ErrEncoding
	msg  string
}

var errNULValue = &valueError{kind: ErrNUL, msg: "NUL in attribute value"}

func encodingError(format string, args ...any) *valueError {
	return &valueError{kind: ErrEncoding, msg: fmt.Sprintf(format, args...)}
}

// DecodeString decodes the contents of an ASN.1 character string with the
// given universal tag number into UTF-8, the way crypto/x509 and BoringSSL
// read the string types of a Name: UTF8String must be valid UTF-8;
// BMPString (UCS-2) and UniversalString (UCS-4) are big-endian, every
// character a Unicode scalar value (no surrogate, nothing above U+10FFFF);
// T61String, PrintableString, IA5String, NumericString and VisibleString
// are one byte per character, read as Latin-1. It checks no repertoire and
// accepts NUL: that is for a renderer. FromDER, which decides matches,
// applies stricter rules on top. Any other tag, or contents invalid for the
// type, is ErrEncoding.
func DecodeString(tag int, contents []byte) (string, error) {
	if tag < 0 || tag >= 0x1f {
		return "", fmt.Errorf("%w: tag %d is not a character string", ErrEncoding, tag)
	}
	v, err := decodeText(byte(tag), string(contents))
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrEncoding, err.msg)
	}
	return v, nil
}

// decodeText is DecodeString on a universal primitive tag octet. With an
// invalid character it also returns the text before it.
func decodeText(tag byte, v string) (string, *valueError) {
	switch tag {
	case asn1.TagUTF8String:
		if !utf8.ValidString(v) {
			return "", encodingError("invalid UTF-8 in UTF8String")
		}
		return v, nil
	case asn1.TagT61String, asn1.TagPrintableString, asn1.TagIA5String, asn1.TagNumericString, tagVisibleString:
		// Latin-1, as crypto/x509 and BoringSSL read T61String.
		ascii := true
		for i := 0; i < len(v) && ascii; i++ {
			ascii = v[i] < utf8.RuneSelf
		}
		if ascii {
			return v, nil
		}
		b := make([]byte, 0, 2*len(v))
		for i := 0; i < len(v); i++ {
			b = utf8.AppendRune(b, rune(v[i]))
		}
		return string(b), nil
	case asn1.TagBMPString:
		if len(v)%2 != 0 {
			return "", encodingError("odd BMPString length")
		}
		b := make([]byte, 0, len(v))
		for i := 0; i < len(v); i += 2 {
			r := rune(v[i])<<8 | rune(v[i+1])
			if !utf8.ValidRune(r) { // a surrogate
				return string(b), encodingError("U+%04X not allowed in BMPString", r)
			}
			b = utf8.AppendRune(b, r)
		}
		return string(b), nil
	case tagUniversalString:
		if len(v)%4 != 0 {
			return "", encodingError("UniversalString length not a multiple of 4")
		}
		b := make([]byte, 0, len(v))
		for i := 0; i < len(v); i += 4 {
			r := rune(v[i])<<24 | rune(v[i+1])<<16 | rune(v[i+2])<<8 | rune(v[i+3])
			if !utf8.ValidRune(r) {
				return string(b), encodingError("invalid code point in UniversalString")
			}
			b = utf8.AppendRune(b, r)
		}
		return string(b), nil
	}
	return "", encodingError("value has tag 0x%02x (%s), not a character string", tag, tagName(tag))
}

// decodeString decodes the contents of a character string of the given
// universal tag for matching: decodeText, and no NUL (ErrNUL), only the
// repertoire of PrintableString, IA5String, NumericString and
// VisibleString, and no noncharacter in a BMPString (as crypto/x509).
func decodeString(tag byte, v string) (string, *valueError) {
	switch tag {
	case asn1.TagPrintableString, asn1.TagIA5String, asn1.TagNumericString, tagVisibleString:
		for i := 0; i < len(v); i++ {
			if v[i] == 0 {
				return "", errNULValue
			}
			if !allowed(tag, v[i]) {
				return "", encodingError("byte 0x%02x not allowed in %s", v[i], tagName(tag))
			}
		}
		return v, nil // ASCII: decodeText would return it as is
	case asn1.TagUTF8String, asn1.TagT61String:
		if strings.IndexByte(v, 0) >= 0 {
			return "", errNULValue
		}
	}
	s, err := decodeText(tag, v)
	if tag == asn1.TagBMPString || tag == tagUniversalString {
		// The first bad character decides, whichever rule it breaks.
		for _, r := range s {
			if r == 0 {
				return "", errNULValue
			}
			if tag == asn1.TagBMPString && (r >= 0xfdd0 && r <= 0xfdef || r >= 0xfffe) {
				return "", encodingError("U+%04X not allowed in BMPString", r)
			}
		}
	}
	if err != nil {
		return "", err
	}
	return s, nil
}

func allowed(tag, c byte) bool {
	switch tag {
	case asn1.TagPrintableString:
		// X.680 PrintableString plus '*' and '&', which crypto/x509 also
		// accepts because real certificates use them.
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte(" '()+,-./:=?*&", c) >= 0
	case asn1.TagIA5String:
		return c < utf8.RuneSelf
	case asn1.TagNumericString:
		return '0' <= c && c <= '9' || c == ' '
	default: // VisibleString
		return ' ' <= c && c <= '~'
	}
}

func tagName(tag byte) string {
	switch tag {
	case asn1.TagOctetString:
		return "OCTET STRING"
	case asn1.TagPrintableString:
		return "PrintableString"
	case asn1.TagIA5String:
		return "IA5String"
	case asn1.TagNumericString:
		return "NumericString"
	case tagVisibleString:
		return "VisibleString"
	}
	form := "primitive"
	if tag&0x20 != 0 {
		form = "constructed"
	}
	return fmt.Sprintf("class %d, %s, number %d", tag>>6, form, tag&0x1f)
}

func derError(kind error, off int, format string, args ...any) error {
	return &posError{where: "DER offset", pos: off, msg: fmt.Sprintf(format, args...), kind: kind}
}

package envoyxfcc

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/certbind/certbind/policy/dn"
)

// ErrBadSubject: FormatSubject got a name that is not DER, or one BoringSSL (or, for
// formatSubjectOpenSSL, OpenSSL) would not load.
var ErrBadSubject = errors.New("malformed subject name")

// FormatSubject renders a certificate's RawSubject the way Envoy fills XFCC `Subject` (and
// %DOWNSTREAM_PEER_SUBJECT%): BoringSSL's X509_NAME_print_ex(..., XN_FLAG_RFC2253), called by
// Envoy's Utility::getSubjectFromCertificate (source/common/tls/utility.cc). That is:
// most specific RDN first; short names from BoringSSL's object table (CN, OU, O, L, ST, C,
// emailAddress, DC, UID, serialNumber, street, ...), other types as a dotted OID with the value
// dumped as '#' and upper-case hex of its DER; values converted to UTF-8 and escaped per RFC
// 2253 (`\,` `\+` `\"` `\\` `\<` `\>` `\;`, a leading '#' or space, a trailing space), every
// byte >= 0x80 and every control byte escaped as \XX (ESC_MSB, ESC_CTRL); members of a
// multi-valued RDN joined with '+' in reverse DER order, as OpenSSL and BoringSSL print them.
//
// BoringSSL's table is older than OpenSSL 3's: organizationIdentifier (2.5.4.97), c3, n3,
// dnsName, uid (0.9.2342.19200300.100.1.44), jurisdictionL/ST/C and the Russian INN, OGRN,
// OGRNIP and SNILS are unknown to it, so Envoy prints, e.g., 2.5.4.97=#0C22...; use
// formatSubjectOpenSSL for what `openssl x509 -nameopt RFC2253` prints.
//
// A name BoringSSL would refuse to parse is an error and renders as "": malformed DER, an
// empty RDN, or invalid UTF8String, BMPString or UniversalString contents in any attribute
// (BoringSSL canonicalizes every value when it parses a certificate).
func FormatSubject(rawSubject []byte) (string, error) {
	return formatName(rawSubject, boringSSL)
}

// formatSubjectOpenSSL is the tests' second oracle: it renders rawSubject like OpenSSL 3's
// X509_NAME_print_ex with
// XN_FLAG_RFC2253 (`openssl x509 -noout -subject -nameopt RFC2253`; checked against OpenSSL
// 3.0.19 on every name it loads). It differs from FormatSubject in the object table (see
// there), in accepting an empty RDN, and in one OpenSSL quirk: a value of a single '#' is not
// escaped (do_buf flags a character that is both first and last as last only).
func formatSubjectOpenSSL(rawSubject []byte) (string, error) {
	return formatName(rawSubject, openSSL)
}

type dialect uint8

const (
	boringSSL dialect = iota
	openSSL
)

type nameEntry struct {
	oid    asn1.ObjectIdentifier
	value  asn1.RawValue
	text   string // the value as UTF-8 when it is a string type this renders as text
	isText bool   // text is set (false: dump the DER)
	set    int    // index of the RDN
}

func formatName(raw []byte, d dialect) (string, error) {
	entries, err := parseName(raw, d)
	if err != nil {
		return "", err
	}
	out := make([]byte, 0, len(raw))
	// XN_FLAG_DN_REV: last entry first; entries of one RDN share a set and are joined by '+'.
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if i != len(entries)-1 {
			if e.set == entries[i+1].set {
				out = append(out, '+')
			} else {
				out = append(out, ',')
			}
		}
		name, known := attributeName(e.oid, d)
		out = append(out, name...)
		out = append(out, '=')
		if known && e.isText {
			out = appendEscaped(out, e.text, d)
		} else {
			// XN_FLAG_DUMP_UNKNOWN_FIELDS (an unknown type) or ASN1_STRFLGS_DUMP_UNKNOWN
			// (not a string): '#' and the whole DER of the value.
			out = appendDump(out, e.value.FullBytes)
		}
	}
	return string(out), nil
}

// parseName splits a DER Name (RDNSequence) into its attributes in DER order and decodes
// their string values.
func parseName(raw []byte, d dialect) ([]nameEntry, error) {
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(raw, &seq)
	if err != nil || len(rest) != 0 || seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound {
		return nil, nameErr(nil)
	}
	var entries []nameEntry
	for body, set := seq.Bytes, 0; len(body) > 0; set++ {
		var rdn asn1.RawValue
		if body, err = asn1.Unmarshal(body, &rdn); err != nil || rdn.Class != asn1.ClassUniversal || rdn.Tag != asn1.TagSet || !rdn.IsCompound {
			return nil, nameErr(nil)
		}
		if len(rdn.Bytes) == 0 && d == boringSSL {
			return nil, nameErr(errors.New("empty RDN"))
		}
		for atvs := rdn.Bytes; len(atvs) > 0; {
			var atv asn1.RawValue
			if atvs, err = asn1.Unmarshal(atvs, &atv); err != nil || atv.Class != asn1.ClassUniversal || atv.Tag != asn1.TagSequence || !atv.IsCompound {
				return nil, nameErr(nil)
			}
			e := nameEntry{set: set}
			inner, err := asn1.Unmarshal(atv.Bytes, &e.oid)
			if err != nil {
				return nil, nameErr(nil)
			}
			if inner, err = asn1.Unmarshal(inner, &e.value); err != nil || len(inner) != 0 {
				return nil, nameErr(nil)
			}
			if e.text, e.isText, err = textOf(e.value); err != nil {
				return nil, nameErr(fmt.Errorf("attribute %s: %w", e.oid, err))
			}
			entries = append(entries, e)
		}
	}
	return entries, nil
}

func nameErr(detail error) error {
	if detail == nil {
		return fmt.Errorf("envoyxfcc: %w", ErrBadSubject)
	}
	return fmt.Errorf("envoyxfcc: %w: %w", ErrBadSubject, detail)
}

// attributeName is OBJ_nid2sn of the attribute type, or OBJ_obj2txt into the 80-byte buffer
// of do_name_ex (so at most 79 characters) when the type is not in the table.
func attributeName(oid asn1.ObjectIdentifier, d dialect) (string, bool) {
	s := oid.String()
	if n, ok := attributeNames[s]; ok {
		return n, true
	}
	if n, ok := openSSLOnlyNames[s]; ok && d == openSSL {
		return n, true
	}
	if len(s) > 79 {
		s = s[:79]
	}
	return s, false
}

const upperHex = "0123456789ABCDEF"

func appendDump(out, der []byte) []byte {
	out = append(out, '#')
	for _, c := range der {
		out = append(out, upperHex[c>>4], upperHex[c&0xf])
	}
	return out
}

// Universal tags of the types ASN1_STRING_print_ex prints as text (X.680).
const (
	tagUTF8String      = 12
	tagNumericString   = 18
	tagPrintableString = 19
	tagT61String       = 20
	tagIA5String       = 22
	tagUTCTime         = 23
	tagGeneralizedTime = 24
	tagVisibleString   = 26
	tagUniversalString = 28
	tagBMPString       = 30
)

// textOf returns the text of a value ASN1_STRING_print_ex prints as text (BoringSSL's
// string_type_to_encoding), isText=false for any other value, and an error for contents that
// are invalid for their type. The string types decode as dn.DecodeString reads them, NUL and
// any byte of a PrintableString included; UTCTime and GeneralizedTime are one byte per
// character, like T61String.
func textOf(v asn1.RawValue) (text string, isText bool, err error) {
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return "", false, nil
	}
	tag := v.Tag
	switch tag {
	case tagUTCTime, tagGeneralizedTime:
		tag = tagT61String
	case tagUTF8String, tagNumericString, tagPrintableString, tagT61String, tagIA5String,
		tagVisibleString, tagUniversalString, tagBMPString:
	default:
		// VideotexString, GraphicString, GeneralString and non-string types are dumped.
		return "", false, nil
	}
	if text, err = dn.DecodeString(tag, v.Bytes); err != nil {
		return "", false, err
	}
	return text, true, nil
}

// appendEscaped escapes each byte of the UTF-8 text (ASN1_STRFLGS_UTF8_CONVERT, then
// do_esc_char). BoringSSL flags the first byte of the first character and the last byte of
// the last one; OpenSSL flags characters, and a character that is both first and last only as
// last, so a lone '#' stays unescaped there.
func appendEscaped(out []byte, text string, d dialect) []byte {
	for i := 0; i < len(text); {
		_, size := utf8.DecodeRuneInString(text[i:])
		end := i + size
		for j := i; j < end; j++ {
			var first, last bool
			if d == boringSSL {
				first, last = j == 0, j == len(text)-1
			} else {
				last = end == len(text)
				first = i == 0 && !last
			}
			out = appendEscapedByte(out, text[j], first, last)
		}
		i = end
	}
	return out
}

func appendEscapedByte(out []byte, c byte, first, last bool) []byte {
	switch {
	case c >= 0x80, c < 0x20, c == 0x7f:
		return append(out, '\\', upperHex[c>>4], upperHex[c&0xf])
	case c == '\\', c == '"', c == ',', c == '+', c == '<', c == '>', c == ';',
		first && (c == ' ' || c == '#'), last && c == ' ':
		return append(out, '\\', c)
	}
	return append(out, c)
}

// attributeNames maps the attribute types both BoringSSL and OpenSSL 3 know to their short
// names (crypto/obj/objects.txt; an entry without a short name uses its long name). Only the
// arcs used for attribute types are listed.
var attributeNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "serialNumber", "2.5.4.6": "C",
	"2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "street", "2.5.4.10": "O", "2.5.4.11": "OU",
	"2.5.4.12": "title", "2.5.4.13": "description", "2.5.4.14": "searchGuide",
	"2.5.4.15": "businessCategory", "2.5.4.16": "postalAddress", "2.5.4.17": "postalCode",
	"2.5.4.18": "postOfficeBox", "2.5.4.19": "physicalDeliveryOfficeName",
	"2.5.4.20": "telephoneNumber", "2.5.4.21": "telexNumber",
	"2.5.4.22": "teletexTerminalIdentifier", "2.5.4.23": "facsimileTelephoneNumber",
	"2.5.4.24": "x121Address", "2.5.4.25": "internationaliSDNNumber",
	"2.5.4.26": "registeredAddress", "2.5.4.27": "destinationIndicator",
	"2.5.4.28": "preferredDeliveryMethod", "2.5.4.29": "presentationAddress",
	"2.5.4.30": "supportedApplicationContext", "2.5.4.31": "member", "2.5.4.32": "owner",
	"2.5.4.33": "roleOccupant", "2.5.4.34": "seeAlso", "2.5.4.35": "userPassword",
	"2.5.4.36": "userCertificate", "2.5.4.37": "cACertificate",
	"2.5.4.38": "authorityRevocationList", "2.5.4.39": "certificateRevocationList",
	"2.5.4.40": "crossCertificatePair", "2.5.4.41": "name", "2.5.4.42": "GN",
	"2.5.4.43": "initials", "2.5.4.44": "generationQualifier",
	"2.5.4.45": "x500UniqueIdentifier", "2.5.4.46": "dnQualifier",
	"2.5.4.47": "enhancedSearchGuide", "2.5.4.48": "protocolInformation",
	"2.5.4.49": "distinguishedName", "2.5.4.50": "uniqueMember", "2.5.4.51": "houseIdentifier",
	"2.5.4.52": "supportedAlgorithms", "2.5.4.53": "deltaRevocationList", "2.5.4.54": "dmdName",
	"2.5.4.65": "pseudonym", "2.5.4.72": "role", "2.5.4": "X509", "2.5.1.5.55": "clearance",

	"1.2.840.113549.1.9.1": "emailAddress", "1.2.840.113549.1.9.2": "unstructuredName",
	"1.2.840.113549.1.9.3": "contentType", "1.2.840.113549.1.9.4": "messageDigest",
	"1.2.840.113549.1.9.5": "signingTime", "1.2.840.113549.1.9.6": "countersignature",
	"1.2.840.113549.1.9.7": "challengePassword", "1.2.840.113549.1.9.8": "unstructuredAddress",
	"1.2.840.113549.1.9.9": "extendedCertificateAttributes", "1.2.840.113549.1.9.14": "extReq",
	"1.2.840.113549.1.9.15": "SMIME-CAPS", "1.2.840.113549.1.9.16": "SMIME",
	"1.2.840.113549.1.9.20": "friendlyName", "1.2.840.113549.1.9.21": "localKeyID",

	"0.9.2342.19200300.100.1.1": "UID", "0.9.2342.19200300.100.1.2": "textEncodedORAddress",
	"0.9.2342.19200300.100.1.3": "mail", "0.9.2342.19200300.100.1.4": "info",
	"0.9.2342.19200300.100.1.5": "favouriteDrink", "0.9.2342.19200300.100.1.6": "roomNumber",
	"0.9.2342.19200300.100.1.7": "photo", "0.9.2342.19200300.100.1.8": "userClass",
	"0.9.2342.19200300.100.1.9": "host", "0.9.2342.19200300.100.1.10": "manager",
	"0.9.2342.19200300.100.1.11": "documentIdentifier", "0.9.2342.19200300.100.1.12": "documentTitle",
	"0.9.2342.19200300.100.1.13": "documentVersion", "0.9.2342.19200300.100.1.14": "documentAuthor",
	"0.9.2342.19200300.100.1.15": "documentLocation",
	"0.9.2342.19200300.100.1.20": "homeTelephoneNumber", "0.9.2342.19200300.100.1.21": "secretary",
	"0.9.2342.19200300.100.1.22": "otherMailbox", "0.9.2342.19200300.100.1.23": "lastModifiedTime",
	"0.9.2342.19200300.100.1.24": "lastModifiedBy", "0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.26": "aRecord", "0.9.2342.19200300.100.1.27": "pilotAttributeType27",
	"0.9.2342.19200300.100.1.28": "mXRecord", "0.9.2342.19200300.100.1.29": "nSRecord",
	"0.9.2342.19200300.100.1.30": "sOARecord", "0.9.2342.19200300.100.1.31": "cNAMERecord",
	"0.9.2342.19200300.100.1.37": "associatedDomain", "0.9.2342.19200300.100.1.38": "associatedName",
	"0.9.2342.19200300.100.1.39": "homePostalAddress", "0.9.2342.19200300.100.1.40": "personalTitle",
	"0.9.2342.19200300.100.1.41": "mobileTelephoneNumber",
	"0.9.2342.19200300.100.1.42": "pagerTelephoneNumber",
	"0.9.2342.19200300.100.1.43": "friendlyCountryName",
	"0.9.2342.19200300.100.1.45": "organizationalStatus", "0.9.2342.19200300.100.1.46": "janetMailbox",
	"0.9.2342.19200300.100.1.47": "mailPreferenceOption", "0.9.2342.19200300.100.1.48": "buildingName",
	"0.9.2342.19200300.100.1.49": "dSAQuality", "0.9.2342.19200300.100.1.50": "singleLevelQuality",
	"0.9.2342.19200300.100.1.51": "subtreeMinimumQuality",
	"0.9.2342.19200300.100.1.52": "subtreeMaximumQuality",
	"0.9.2342.19200300.100.1.53": "personalSignature", "0.9.2342.19200300.100.1.54": "dITRedirect",
	"0.9.2342.19200300.100.1.55": "audio", "0.9.2342.19200300.100.1.56": "documentPublisher",

	"1.3.6.1.5.5.7.9.1": "id-pda-dateOfBirth", "1.3.6.1.5.5.7.9.2": "id-pda-placeOfBirth",
	"1.3.6.1.5.5.7.9.3": "id-pda-gender", "1.3.6.1.5.5.7.9.4": "id-pda-countryOfCitizenship",
	"1.3.6.1.5.5.7.9.5": "id-pda-countryOfResidence",
}

// openSSLOnlyNames are attribute types OpenSSL 3 names and BoringSSL does not (checked against
// OpenSSL 3.0.19).
var openSSLOnlyNames = map[string]string{
	"2.5.4.97": "organizationIdentifier", "2.5.4.98": "c3", "2.5.4.99": "n3", "2.5.4.100": "dnsName",
	"0.9.2342.19200300.100.1.44": "uid",
	"1.3.6.1.4.1.311.60.2.1.1":   "jurisdictionL", "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
	"1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
	"1.2.643.3.131.1.1":        "INN", "1.2.643.100.1": "OGRN", "1.2.643.100.3": "SNILS",
	"1.2.643.100.5": "OGRNIP",
}

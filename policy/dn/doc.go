// Package dn decides whether a certificate's subject is the distinguished
// name registered for a tls_client_auth client (RFC 8705 §2.1.2,
// tls_client_auth_subject_dn).
//
// The registered value is an RFC 4514 string, parsed once at configuration
// load with Parse. The certificate side is cert.RawSubject, parsed per
// request with FromDER. The two are compared as structures with Equal,
// never as strings:
//
//	registered, err := dn.Parse(client.SubjectDN) // at load; reject the config on error
//	...
//	subject, err := dn.FromDER(cert.RawSubject)   // per request; deny on error
//	if err != nil || !registered.Equal(subject) { /* deny */ }
//
// # Matching
//
// Equal is distinguishedNameMatch (RFC 4517 §4.2.15): the same number of
// RDNs in the same order (a reversed DN is a different DN); each RDN is a
// set, so the attributes of a multi-valued RDN may come in any order, but a
// multi-valued RDN never equals the same attributes as separate RDNs.
// Values are compared decoded, whatever their ASN.1 string type (RFC 5280
// §7.1: a PrintableString and a UTF8String with the same text match), with
// the equality rule of their attribute type:
//
//   - caseIgnoreMatch (RFC 4517 §4.2.11; CN, O, OU, C, L, ST, STREET,
//     serialNumber, UID, title, organizationIdentifier and the other
//     DirectoryString and PrintableString types of the table in types.go):
//     case folded, with RFC 4518 §2.6.1 insignificant space handling
//     (leading and trailing spaces dropped, inner runs collapsed to one);
//   - caseIgnoreIA5Match (RFC 4517 §4.2.13; emailAddress, DC, mail): ASCII
//     case folding and the same space handling;
//   - any other type, named by a dotted OID: exact comparison, since no
//     equality rule is known for it.
//
// RFC 4518 string preparation is narrowed so that it can only make fewer
// values equal: the only space is U+0020 (TAB, LF, NBSP are ordinary
// characters), nothing is mapped to nothing (soft hyphen, zero-width space
// stay), there is no NFKC ("ｆｏｏ" is not "foo", "é" precomposed is not
// "e"+U+0301), and case folding is Unicode simple folding that never
// crosses the ASCII boundary: an ASCII letter only matches the same ASCII
// letter in either case, so KELVIN SIGN (U+212A) does not match "k" and
// LONG S (U+017F) does not match "s", although strings.EqualFold says they
// do. Non-ASCII letters fold within their simple folding orbit (Č=č,
// Σ=σ=ς, ẞ=ß); full folding (ß="ss") and Turkish dotted/dotless i are not
// applied.
//
// A value containing NUL is rejected by both parsers (ErrNUL), so it never
// matches. An empty DN cannot be registered (ErrEmpty): it would match every
// certificate with an empty subject.
//
// # What Parse accepts
//
// RFC 4514 strings, most specific RDN first, as OpenSSL -nameopt RFC2253
// (what Envoy puts in XFCC Subject) and Java X500Principal.getName() write
// them. Spaces around ',', '+' and '=' are tolerated as in RFC 2253 §4.
// Attribute type names are case-insensitive; E and EMAILADDRESS are
// emailAddress, SN is surname (not serialNumber), and any type may be a
// dotted OID. #hex values must be the DER of a character string; other
// ASN.1 types (the RFC 4514 §4 example 1.3.6.1.4.1.1466.0=#04024869 is an
// OCTET STRING) are rejected because crypto/x509 refuses certificates with
// such subject values, so they could never match. Rejected as ErrSyntax:
// ';' as RDN separator and "quoted" values (RFC 1779/2253 legacy), the
// OpenSSL slash form /C=US/O=..., unescaped '"' ';' '<' '>', bad escapes,
// empty values, and an attribute type repeated within one RDN.
//
// Rejecting a repeated type has a cost: crypto/x509 writes the several OUs
// of a pkix.Name as one multi-valued RDN (OU=a+OU=b), so a certificate
// made that way cannot be registered by subject DN. FromDER keeps such RDNs
// and Equal compares them as multisets, so allowing them in Parse is a
// one-line change if it is ever wanted.
//
// # Pitfalls this package exists to avoid
//
//   - Go's pkix.Name.String() (cert.Subject.String()) is not the subject: it
//     reorders attributes into a fixed order, merges repeated attributes of
//     separate RDNs into one multi-valued RDN, splits multi-valued RDNs, and
//     writes some types as OIDs. Never compare it or register it; use
//     cert.RawSubject.
//   - Comparing renderings: OpenSSL, Java, Python and Go render the same
//     subject differently (order inside RDNs, type names, escaping of
//     non-ASCII), and string comparison mistakes an escaped ',' or '+' in
//     a value for structure (CN=a\,O=evil is one RDN).
//   - Case-insensitive string comparison of the whole DN ignores that RDN
//     order is significant and folds characters it should not.
//
// Name.String renders RFC 4514 for logs and error messages, escaping
// control and other non-printable characters, so a hostile subject stays
// one printable line.
//
// DecodeString is the one decoder of ASN.1 character strings (T61String as
// Latin-1, BMPString, UniversalString, ...) in certbind: FromDER and Parse's
// #hex values use it under their stricter rules, and renderers of names
// (testenv/envoyxfcc prints subjects as BoringSSL does) use it as is.
package dn

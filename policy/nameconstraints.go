package policy

// Directory name constraints.
//
// crypto/x509 enforces the dNSName, iPAddress, rfc822Name and uniformResourceIdentifier subtrees
// of a CA's nameConstraints extension (RFC 5280 §4.2.1.10) and nothing else. A directoryName
// subtree in a non-critical extension is ignored, so a CA permitted only O=Partner can issue
// CN=billing,O=Example Corp and be believed; in a critical extension it makes Verify refuse
// every certificate of the CA (UnhandledCriticalExtension).
//
// certbind does the directoryName part of path validation itself (RFC 5280 §6.1.3 (b) and
// (c)) on every chain Verify returns: the constraints of each CA of the chain, trust anchor
// included, apply to every certificate below it; the subject (unless empty, or the certificate
// is a self-issued intermediate) and each directoryName of the subjectAltName extension must be
// within a permitted subtree, when the CA has any, and within no excluded one. A chain that
// fails is dropped. Names are matched with dn.Name.Within (RFC 5280 §7.1, the
// distinguishedNameMatch registered subject DNs use).
//
// At parse time, before a certificate is shared, acceptNameConstraints removes a critical
// nameConstraints extension from UnhandledCriticalExtensions when every subtree in it is
// enforced by crypto/x509 or by certbind, so that Verify accepts the CA. An extension with any
// other name form (otherName, x400Address, ediPartyName, registeredID), a minimum or maximum
// other than the default (RFC 5280: minimum MUST be zero, maximum MUST be absent), or a
// directoryName certbind cannot parse stays unhandled and Verify refuses the CA.

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certbind/certbind/policy/dn"
)

var (
	oidNameConstraints = asn1.ObjectIdentifier{2, 5, 29, 30}
	oidSubjectAltName  = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// GeneralName tags (RFC 5280 §4.2.1.6, implicitly tagged): the forms crypto/x509 enforces as
// name constraints, exactly as its parser matches them, and directoryName, which is
// constructed since Name is a CHOICE.
var (
	tagRFC822Name    = cbasn1.Tag(1).ContextSpecific()
	tagDNSName       = cbasn1.Tag(2).ContextSpecific()
	tagDirectoryName = cbasn1.Tag(4).ContextSpecific().Constructed()
	tagURI           = cbasn1.Tag(6).ContextSpecific()
	tagIPAddress     = cbasn1.Tag(7).ContextSpecific()
)

// dirConstraints is the directoryName part of one nameConstraints extension.
type dirConstraints struct {
	permitted, excluded []dn.Name
	// enforced reports that nothing in the extension goes unchecked: every subtree is a
	// directoryName or a form crypto/x509 enforces, with minimum and maximum at their defaults.
	enforced bool
}

// parseNameConstraints parses the value of a nameConstraints extension (RFC 5280 §4.2.1.10).
// It fails on malformed DER and on a directoryName base that dn.FromDER rejects.
func parseNameConstraints(value []byte) (dirConstraints, error) {
	in := cryptobyte.String(value)
	var nc, permitted, excluded cryptobyte.String
	var havePermitted, haveExcluded bool
	if !in.ReadASN1(&nc, cbasn1.SEQUENCE) || !in.Empty() ||
		!nc.ReadOptionalASN1(&permitted, &havePermitted, cbasn1.Tag(0).ContextSpecific().Constructed()) ||
		!nc.ReadOptionalASN1(&excluded, &haveExcluded, cbasn1.Tag(1).ContextSpecific().Constructed()) ||
		!nc.Empty() {
		return dirConstraints{}, errors.New("malformed nameConstraints extension")
	}
	out := dirConstraints{enforced: true}
	var err error
	if out.permitted, err = out.subtrees(permitted); err != nil {
		return dirConstraints{}, fmt.Errorf("permittedSubtrees: %w", err)
	}
	if out.excluded, err = out.subtrees(excluded); err != nil {
		return dirConstraints{}, fmt.Errorf("excludedSubtrees: %w", err)
	}
	return out, nil
}

// subtrees reads GeneralSubtrees and returns the directoryName bases; a subtree certbind and
// crypto/x509 together would not enforce clears c.enforced.
//
//	GeneralSubtree ::= SEQUENCE {
//	     base                    GeneralName,
//	     minimum         [0]     BaseDistance DEFAULT 0,
//	     maximum         [1]     BaseDistance OPTIONAL }
func (c *dirConstraints) subtrees(s cryptobyte.String) ([]dn.Name, error) {
	var names []dn.Name
	for i := 0; !s.Empty(); i++ {
		var subtree, base cryptobyte.String
		var tag cbasn1.Tag
		if !s.ReadASN1(&subtree, cbasn1.SEQUENCE) || !subtree.ReadAnyASN1(&base, &tag) {
			return nil, fmt.Errorf("subtree %d: malformed", i)
		}
		switch tag {
		case tagDirectoryName:
			n, err := dn.FromDER(base)
			if err != nil {
				return nil, fmt.Errorf("subtree %d: directoryName: %w", i, err)
			}
			names = append(names, n)
		case tagRFC822Name, tagDNSName, tagURI, tagIPAddress:
		default:
			c.enforced = false
		}
		if !defaultDistances(subtree) {
			c.enforced = false
		}
	}
	return names, nil
}

// defaultDistances reports whether what follows a subtree's base is nothing but a minimum of
// zero: crypto/x509 ignores both distances, and certbind does not implement them.
func defaultDistances(rest cryptobyte.String) bool {
	var minimum cryptobyte.String
	var present bool
	if !rest.ReadOptionalASN1(&minimum, &present, cbasn1.Tag(0).ContextSpecific()) {
		return false
	}
	if present && !bytes.Equal(minimum, []byte{0}) {
		return false
	}
	return rest.Empty()
}

// acceptNameConstraints removes nameConstraints from cert.UnhandledCriticalExtensions when
// crypto/x509 and checkDirectoryNameConstraints together enforce all of it. It mutates cert:
// call it once, right after parsing, before the certificate is shared.
func acceptNameConstraints(cert *x509.Certificate) {
	if !slices.ContainsFunc(cert.UnhandledCriticalExtensions, oidNameConstraints.Equal) {
		return
	}
	ext := extensionValue(cert, oidNameConstraints)
	if ext == nil {
		return
	}
	if nc, err := parseNameConstraints(ext); err != nil || !nc.enforced {
		return
	}
	cert.UnhandledCriticalExtensions = slices.DeleteFunc(cert.UnhandledCriticalExtensions, oidNameConstraints.Equal)
}

func extensionValue(cert *x509.Certificate, oid asn1.ObjectIdentifier) []byte {
	for _, e := range cert.Extensions {
		if e.Id.Equal(oid) {
			return e.Value
		}
	}
	return nil
}

// directoryNameChains keeps the verified chains that satisfy every directoryName constraint
// in them; when none does, it returns the first chain's failure.
func directoryNameChains(chains [][]*x509.Certificate) ([][]*x509.Certificate, error) {
	var first error
	var kept [][]*x509.Certificate
	for _, chain := range chains {
		if err := checkDirectoryNameConstraints(chain); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		kept = append(kept, chain)
	}
	if len(kept) == 0 {
		return nil, first
	}
	return kept, nil
}

// checkDirectoryNameConstraints applies RFC 5280 §6.1.3 (b) and (c) for directoryName to a
// verified chain, leaf first and trust anchor last: the subtrees of every certificate in it
// constrain the names of every certificate below it.
func checkDirectoryNameConstraints(chain []*x509.Certificate) error {
	for i := 1; i < len(chain); i++ {
		ca := chain[i]
		value := extensionValue(ca, oidNameConstraints)
		if value == nil {
			continue
		}
		nc, err := parseNameConstraints(value)
		if err != nil {
			return fmt.Errorf("name constraints of %s: %w", certName(ca), err)
		}
		if len(nc.permitted) == 0 && len(nc.excluded) == 0 {
			continue
		}
		for j := range i {
			if j > 0 && selfIssued(chain[j]) {
				continue // §6.1.3 (b): a self-issued intermediate's names are not checked
			}
			names, err := directoryNames(chain[j])
			if err != nil {
				return fmt.Errorf("name constraints of %s: %s: %w", certName(ca), certName(chain[j]), err)
			}
			for _, n := range names {
				if err := nc.check(n); err != nil {
					return fmt.Errorf("name constraints of %s: %w", certName(ca), err)
				}
			}
		}
	}
	return nil
}

// namedDN is a directory name of a certificate and what it is, for error messages.
type namedDN struct {
	what string // "subject" or "directoryName SAN"
	name dn.Name
}

func (n namedDN) String() string { return fmt.Sprintf("%s %q", n.what, n.name) }

// check applies the subtrees to one name. Excluded wins over permitted.
func (c dirConstraints) check(n namedDN) error {
	for _, base := range c.excluded {
		if n.name.Within(base) {
			return fmt.Errorf("%s is within excluded directoryName subtree %q", n, base)
		}
	}
	if len(c.permitted) > 0 && !slices.ContainsFunc(c.permitted, n.name.Within) {
		return fmt.Errorf("%s is not within a permitted directoryName subtree (%s)", n, listNames(c.permitted, 3))
	}
	return nil
}

// directoryNames returns the names of cert that directoryName constraints apply to: its
// subject unless empty, and the directoryNames of its subjectAltName extension. A name that
// does not parse cannot be shown to be within a subtree: it is an error.
func directoryNames(cert *x509.Certificate) ([]namedDN, error) {
	var out []namedDN
	subject, err := dn.FromDER(cert.RawSubject)
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	if !subject.Equal(dn.Name{}) {
		out = append(out, namedDN{"subject", subject})
	}
	san := extensionValue(cert, oidSubjectAltName)
	if san == nil {
		return out, nil
	}
	in := cryptobyte.String(san)
	var names cryptobyte.String
	if !in.ReadASN1(&names, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("malformed subjectAltName extension")
	}
	for !names.Empty() {
		var v cryptobyte.String
		var tag cbasn1.Tag
		if !names.ReadAnyASN1(&v, &tag) {
			return nil, errors.New("malformed subjectAltName extension")
		}
		if tag != tagDirectoryName {
			continue
		}
		n, err := dn.FromDER(v)
		if err != nil {
			return nil, fmt.Errorf("directoryName SAN: %w", err)
		}
		out = append(out, namedDN{"directoryName SAN", n})
	}
	return out, nil
}

// selfIssued reports whether the subject and issuer of cert are the same DN (RFC 5280 §6.1).
func selfIssued(cert *x509.Certificate) bool {
	if bytes.Equal(cert.RawSubject, cert.RawIssuer) {
		return true
	}
	s, err := dn.FromDER(cert.RawSubject)
	if err != nil {
		return false
	}
	i, err := dn.FromDER(cert.RawIssuer)
	return err == nil && s.Equal(i)
}

// certName is a certificate's subject quoted, for error messages.
func certName(cert *x509.Certificate) string {
	if n, err := dn.FromDER(cert.RawSubject); err == nil {
		return fmt.Sprintf("%q", n)
	}
	return fmt.Sprintf("%q", cert.Subject)
}

// listNames quotes up to limit names, and says how many more there are.
func listNames(names []dn.Name, limit int) string {
	var b strings.Builder
	for i, n := range names {
		if i == limit {
			fmt.Fprintf(&b, " and %d more", len(names)-limit)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", n)
	}
	return b.String()
}

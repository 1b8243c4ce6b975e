package envoyxfcc

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"strings"
)

// Details mirrors the HTTP connection manager's set_current_client_cert_details: which
// optional pairs Envoy adds to its own element. By and Hash are always written.
type Details struct {
	Subject, Cert, Chain, URI, DNS bool
}

// Build returns the element Envoy writes for a connection, byte for byte
// (ConnectionManagerUtility::mutateXfccRequestHeader, source/common/http/conn_manager_utility.cc):
// one By per URI SAN of the proxy's own certificate, Hash (lower-case hex SHA-256 of the leaf
// DER), then, as enabled and always in this order (the order the connection manager's config
// builds its list in): Cert (URL-encoded PEM of the leaf), Chain (URL-encoded PEM of every
// certificate the client sent, concatenated), Subject (FormatSubject of the leaf, quoted, not
// escaped further), one URI per URI SAN of the leaf or a single empty `URI=` if it has none,
// one DNS per DNS SAN (nothing if none). Pairs are joined with ';'.
//
// peerChain is the chain as the client sent it, leaf first; proxyCert may be nil (no By).
// SAN values are taken raw from the certificate's extension, as Envoy does; Envoy escapes none
// of By, URI, DNS (envoy#32945).
func Build(proxyCert *x509.Certificate, peerChain []*x509.Certificate, d Details) string {
	var pairs []string
	if proxyCert != nil {
		uris, _ := SANs(proxyCert)
		for _, u := range uris {
			pairs = append(pairs, "By="+u)
		}
	}
	var leaf *x509.Certificate
	if len(peerChain) > 0 {
		leaf = peerChain[0]
		sum := sha256.Sum256(leaf.Raw)
		pairs = append(pairs, "Hash="+hex.EncodeToString(sum[:]))
	}
	if d.Cert && leaf != nil {
		pairs = append(pairs, `Cert="`+EncodePEM(pemCert(leaf))+`"`)
	}
	if d.Chain && leaf != nil {
		var sb strings.Builder
		for _, c := range peerChain {
			sb.WriteString(EncodePEM(pemCert(c)))
		}
		pairs = append(pairs, `Chain="`+sb.String()+`"`)
	}
	var uris, dns []string
	if leaf != nil {
		uris, dns = SANs(leaf)
	}
	if d.Subject {
		subject := ""
		if leaf != nil {
			// A name FormatSubject rejects is one BoringSSL does not parse: Envoy never sees
			// such a certificate, and "" is as good as anything.
			subject, _ = FormatSubject(leaf.RawSubject)
		}
		pairs = append(pairs, `Subject="`+subject+`"`)
	}
	if d.URI {
		if len(uris) == 0 {
			pairs = append(pairs, "URI=")
		}
		for _, u := range uris {
			pairs = append(pairs, "URI="+u)
		}
	}
	if d.DNS {
		for _, n := range dns {
			pairs = append(pairs, "DNS="+n)
		}
	}
	return strings.Join(pairs, ";")
}

// ForwardMode mirrors the HTTP connection manager's forward_client_cert_details.
type ForwardMode string

const (
	// Sanitize removes the header (Envoy's default).
	Sanitize ForwardMode = "SANITIZE"
	// ForwardOnly passes the client's header through on mTLS connections, removes it otherwise.
	ForwardOnly ForwardMode = "FORWARD_ONLY"
	// AppendForward appends Envoy's element to the client's header on mTLS connections.
	AppendForward ForwardMode = "APPEND_FORWARD"
	// SanitizeSet replaces the header with Envoy's element on mTLS connections.
	SanitizeSet ForwardMode = "SANITIZE_SET"
	// AlwaysForwardOnly passes the client's header through, even on plaintext: the header is
	// then entirely client-controlled.
	AlwaysForwardOnly ForwardMode = "ALWAYS_FORWARD_ONLY"
)

// Mutate computes the outgoing header like Envoy's mutateXfccRequestHeader. incoming and
// incomingPresent describe the header the client sent; mtls says the connection is TLS with a
// peer certificate; element is Build's output for that connection. It returns the new value
// and whether the header is present. An unknown mode sanitizes.
func Mutate(incoming string, incomingPresent bool, mtls bool, mode ForwardMode, element string) (string, bool) {
	if !incomingPresent {
		incoming = ""
	}
	switch {
	case mode == AlwaysForwardOnly:
		return incoming, incomingPresent
	case mode == Sanitize || !mtls:
		return "", false
	case mode == ForwardOnly:
		return incoming, incomingPresent
	case mode == AppendForward:
		// appendForwardedClientCert(element, ","): the delimiter only after a non-empty
		// value, nothing appended for an empty element, the header created either way.
		if element == "" {
			return incoming, true
		}
		if incoming == "" {
			return element, true
		}
		return incoming + "," + element, true
	case mode == SanitizeSet:
		return element, true
	}
	return "", false
}

// EncodePEM percent-encodes PEM text like Envoy's URL encoding of certificates: A-Z a-z 0-9
// and * - . _ are kept, every other byte becomes %XX in upper case. On PEM this is byte for
// byte what Envoy's urlEncodedPemEncodedPeerCertificate writes (it replaces exactly the
// characters PEM contains besides letters, digits and '-': newline, space, + / =).
func EncodePEM(pemText []byte) string {
	n := 0
	for _, c := range pemText {
		if !keepInURL(c) {
			n++
		}
	}
	var sb strings.Builder
	sb.Grow(len(pemText) + 2*n)
	for _, c := range pemText {
		if keepInURL(c) {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(upperHex[c>>4])
		sb.WriteByte(upperHex[c&0xf])
	}
	return sb.String()
}

func keepInURL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '*' || c == '-' || c == '.' || c == '_'
}

// pemCert is PEM_write_bio_X509's output, which pem.EncodeToMemory matches (64-column base64,
// newline after every line).
func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// SANs returns the URI and DNS SANs of c as the bytes of their IA5Strings, in certificate
// order, like Envoy's Utility::getSubjectAltNames (what Envoy writes in By, URI and DNS, and
// uses for principals). crypto/x509 re-serializes URIs through net/url, which is not always
// byte-identical.
func SANs(c *x509.Certificate) (uris, dns []string) {
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var seq asn1.RawValue
		if rest, err := asn1.Unmarshal(ext.Value, &seq); err != nil || len(rest) != 0 || !seq.IsCompound {
			return nil, nil
		}
		for names := seq.Bytes; len(names) > 0; {
			var gn asn1.RawValue
			var err error
			if names, err = asn1.Unmarshal(names, &gn); err != nil {
				return nil, nil
			}
			if gn.Class != asn1.ClassContextSpecific || gn.IsCompound {
				continue
			}
			switch gn.Tag {
			case 2: // dNSName
				dns = append(dns, string(gn.Bytes))
			case 6: // uniformResourceIdentifier
				uris = append(uris, string(gn.Bytes))
			}
		}
		return uris, dns
	}
	return nil, nil
}

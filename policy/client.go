package policy

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/certbind/certbind/policy/jwks"
	"github.com/certbind/certbind/policy/revocation"
)

// AuthMethod is an RFC 8705 token_endpoint_auth_method.
type AuthMethod string

// The two mutual-TLS client authentication methods of RFC 8705 section 2.
const (
	MethodPKI        AuthMethod = "tls_client_auth"             // chain to a trust anchor + one registered name
	MethodSelfSigned AuthMethod = "self_signed_tls_client_auth" // a pinned certificate
)

// Client is a registered client, compiled from configuration.
type Client struct {
	ID     string
	Method AuthMethod

	match matcher        // MethodPKI
	roots *x509.CertPool // MethodPKI: the client's own trust anchors; nil means the global ones
	// revocationFailure is what an unknown online revocation status does for this client.
	revocationFailure revocation.FailurePolicy
	pinned            jwks.Source // MethodSelfSigned
}

// Binding describes what the client is registered with, for logs and `certbind check`.
func (c *Client) Binding() string {
	if c.Method == MethodPKI {
		return c.match.String()
	}
	if r, ok := c.pinned.(*jwks.Remote); ok {
		return "jwks_uri " + r.URL()
	}
	return "pinned certificates (jwks)"
}

// matcher decides whether a verified certificate carries the name a tls_client_auth client
// registered (RFC 8705 section 2.1.2).
type matcher interface {
	matches(p *Presented) bool
	String() string
	// key files the client in the clientIndex: a certificate name with the same key is one
	// matches accepts (index.go).
	key() string
}

// subjectMatcher compares the certificate's subject, parsed from its DER, with the registered
// RFC 4514 string by distinguishedNameMatch (RFC 4517 section 4.2.15). Two names match exactly
// when their dn.Name.Key is the same (dn's FuzzParse holds Key to Equal), so a registration keeps
// only its key and the name as registered: a large registry is that much smaller to hold and
// to collect.
type subjectMatcher struct{ k, text string }

func (m subjectMatcher) matches(p *Presented) bool {
	return p.SubjectErr == nil && p.subjectKey() == m.k
}
func (m subjectMatcher) String() string { return "tls_client_auth_subject_dn " + m.text }

// dnsMatcher: a dNSName SAN equal ignoring ASCII case (RFC 5280 section 7.2). No wildcards: a
// registration names one client.
type dnsMatcher struct{ name string }

func (m dnsMatcher) matches(p *Presented) bool {
	for _, n := range p.Leaf.DNSNames {
		if asciiEqualFold(n, m.name) {
			return true
		}
	}
	return false
}
func (m dnsMatcher) String() string { return "tls_client_auth_san_dns " + m.name }

// uriMatcher: a uniformResourceIdentifier SAN; scheme and host compare case-insensitively, the
// rest exactly (RFC 5280 section 7.4). uriKey holds each part so compared, so two URIs match
// exactly when their keys are the same; a registration keeps only its key and the URI as
// registered.
type uriMatcher struct{ k, text string }

func (m uriMatcher) matches(p *Presented) bool {
	return slices.Contains(p.uriKeys(), m.k)
}
func (m uriMatcher) String() string { return "tls_client_auth_san_uri " + m.text }

// ipMatcher: an iPAddress SAN compared in binary: 4 bytes match an IPv4 registration, 16 bytes
// an IPv6 one; an IPv4-mapped IPv6 SAN does not match an IPv4 registration.
type ipMatcher struct{ addr netip.Addr }

func (m ipMatcher) matches(p *Presented) bool {
	for _, ip := range p.Leaf.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok && a == m.addr {
			return true
		}
	}
	return false
}
func (m ipMatcher) String() string { return "tls_client_auth_san_ip " + m.addr.String() }

// emailMatcher: an rfc822Name SAN; the local part exactly, the domain ignoring ASCII case (RFC
// 5280 section 7.5).
type emailMatcher struct{ local, domain string }

func (m emailMatcher) matches(p *Presented) bool {
	for _, e := range p.Leaf.EmailAddresses {
		local, domain, ok := strings.Cut(e, "@")
		if ok && local == m.local && asciiEqualFold(domain, m.domain) {
			return true
		}
	}
	return false
}
func (m emailMatcher) String() string { return "tls_client_auth_san_email " + m.local + "@" + m.domain }

// asciiEqualFold compares ignoring ASCII case only: strings.EqualFold would also fold non-ASCII
// letters such as the Kelvin sign onto 'k', which has no place in DNS names or URI hosts.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Mode is what certbind decides for a route.
type Mode string

// Modes. Envoy selects one per route with the context extension certbind_mode.
const (
	ModeClientAuth Mode = "client_auth" // RFC 8705 client authentication at a token endpoint
	ModeIdentity   Mode = "identity"    // the certificate must belong to exactly one registered client
	ModeBoundToken Mode = "bound_token" // RFC 8705 section 3: a valid access token bound to the certificate
)

// ParseMode validates a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeClientAuth, ModeIdentity, ModeBoundToken:
		return m, nil
	}
	return "", fmt.Errorf("unknown mode %q (want client_auth, bound_token or identity)", s)
}

package policy

// Client registrations (RFC 7591 / RFC 8705 client metadata) compiled into Clients.

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/certbind/certbind/policy/dn"
	"github.com/certbind/certbind/policy/jwks"
	"github.com/certbind/certbind/policy/revocation"
)

func (b *builder) client(path string, fc *fileClient, c *Config) *Client {
	if fc.ClientID == "" {
		b.errf(path+".client_id", "missing")
		return nil
	}
	if hasControl(fc.ClientID) {
		// certbind sends the client_id upstream in a header.
		b.errf(path+".client_id", "%q contains a control character", fc.ClientID)
		return nil
	}
	names := fc.subjectNames()
	switch fc.TokenEndpointAuthMethod {
	case string(MethodPKI):
		return b.pkiClient(path, fc, names, c)
	case string(MethodSelfSigned):
		return b.selfSignedClient(path, fc, names, c)
	case "":
		b.errf(path+".token_endpoint_auth_method", "missing: want tls_client_auth or self_signed_tls_client_auth")
	default:
		b.errf(path+".token_endpoint_auth_method", "%q: certbind authenticates tls_client_auth and self_signed_tls_client_auth clients", fc.TokenEndpointAuthMethod)
	}
	return nil
}

// subjectName is one tls_client_auth_* registration: its key and value.
type subjectName struct{ key, value string }

// subjectNames are the tls_client_auth_* keys the registration sets, in a fixed order.
func (fc *fileClient) subjectNames() []subjectName {
	var out []subjectName
	for _, n := range []subjectName{
		{"tls_client_auth_subject_dn", fc.SubjectDN}, {"tls_client_auth_san_dns", fc.SANDNS},
		{"tls_client_auth_san_uri", fc.SANURI}, {"tls_client_auth_san_ip", fc.SANIP},
		{"tls_client_auth_san_email", fc.SANEmail},
	} {
		if n.value != "" {
			out = append(out, n)
		}
	}
	return out
}

// keySources counts the registration's jwks, jwks_file and jwks_uri.
func (fc *fileClient) keySources() int {
	n := 0
	for _, present := range []bool{fc.JWKS.node != nil && !fc.JWKS.node.IsZero(), fc.JWKSFile != "", fc.JWKSURI != ""} {
		if present {
			n++
		}
	}
	return n
}

// joinKeys lists the keys of names, for an error.
func joinKeys(names []subjectName) string {
	k := make([]string, len(names))
	for i, n := range names {
		k[i] = n.key
	}
	return strings.Join(k, ", ")
}

// pkiClient compiles a tls_client_auth registration: exactly one name, optionally its own
// trust anchors and revocation failure policy.
func (b *builder) pkiClient(path string, fc *fileClient, names []subjectName, c *Config) *Client {
	if len(names) != 1 {
		b.errf(path, "tls_client_auth needs exactly one of tls_client_auth_subject_dn, _san_dns, _san_uri, _san_ip, _san_email; found %d (%s)", len(names), joinKeys(names))
		return nil
	}
	if fc.keySources() > 0 {
		b.errf(path, "jwks, jwks_file and jwks_uri belong to self_signed_tls_client_auth, not tls_client_auth")
		return nil
	}
	m, err := newMatcher(names[0].key, names[0].value)
	if err != nil {
		b.errf(path+"."+names[0].key, "%v", err)
		return nil
	}
	cl := &Client{ID: fc.ClientID, Method: MethodPKI, match: m, revocationFailure: c.revocationFailure}
	if fc.RevocationFailure != "" {
		cl.revocationFailure = revocation.FailurePolicy(fc.RevocationFailure)
	}
	if !cl.revocationFailure.Valid() {
		b.errf(path+".revocation_failure", "%q: want hard or soft", fc.RevocationFailure)
		return nil
	}
	if len(fc.TrustAnchors) > 0 {
		cl.roots = x509.NewCertPool()
		b.readAnchors(path+".trust_anchors", fc.TrustAnchors, cl.roots)
	}
	return cl
}

// selfSignedClient compiles a self_signed_tls_client_auth registration: pinned certificates
// from exactly one of jwks, jwks_file, jwks_uri, and nothing of tls_client_auth.
func (b *builder) selfSignedClient(path string, fc *fileClient, names []subjectName, c *Config) *Client {
	switch {
	case fc.RevocationFailure != "":
		b.errf(path+".revocation_failure", "self_signed_tls_client_auth certificates are pinned, not checked for revocation")
	case len(names) > 0:
		b.errf(path, "%s belongs to tls_client_auth; self_signed_tls_client_auth pins certificates through jwks, jwks_file or jwks_uri", joinKeys(names))
	case len(fc.TrustAnchors) > 0:
		b.errf(path+".trust_anchors", "self_signed_tls_client_auth certificates are pinned, not chain-validated")
	case fc.keySources() != 1:
		b.errf(path, "self_signed_tls_client_auth needs exactly one of jwks, jwks_file, jwks_uri; found %d", fc.keySources())
	default:
		if src := b.jwksSource(path, fc, c); src != nil {
			return &Client{ID: fc.ClientID, Method: MethodSelfSigned, pinned: src}
		}
	}
	return nil
}

func (b *builder) jwksSource(path string, fc *fileClient, c *Config) jwks.Source {
	tlsSet := fileTLS{CA: fc.JWKSURITLSCA, Cert: fc.JWKSURITLSCert, Key: fc.JWKSURITLSKey}
	if fc.JWKSURI != "" {
		client, ok := b.tlsClient(path, "jwks_uri_tls_", tlsSet)
		if !ok {
			return nil
		}
		return b.remoteKeys(path, fc.JWKSURI, fc.JWKSURI, c, client)
	}
	if tlsSet != (fileTLS{}) {
		b.errf(path, "jwks_uri_tls_ca, jwks_uri_tls_cert and jwks_uri_tls_key apply to jwks_uri")
		return nil
	}
	set, where, ok := b.staticKeys(path, fc.JWKS.Node(), fc.JWKSFile)
	if !ok {
		return nil
	}
	if len(set.Certificates()) != set.Len() {
		for i, k := range set.Keys() {
			if len(k.Certificates) == 0 {
				b.errf(fmt.Sprintf("%s.keys[%d]", where, i), "x5c missing: self_signed_tls_client_auth registers certificates")
			}
		}
		return nil
	}
	return jwks.NewStatic(set)
}

// remoteKeys is the key source of a jwks_uri (label names it in fetch reports); nil when the
// URI is not http(s).
func (b *builder) remoteKeys(path, uri, label string, c *Config, client *http.Client) jwks.Source {
	if !isHTTPURL(uri) {
		b.errf(path+".jwks_uri", "%q is not an http(s) URL", uri)
		return nil
	}
	return jwks.NewRemote(uri, b.remoteOptions(c, label, client))
}

// staticKeys parses a key set written in the configuration, inline (jwks) or in a file
// (jwks_file), and returns it with the key path errors about its keys should name. Unlike a
// fetched set, one the operator wrote is held to every key: a key of a type certbind skips is
// an error here, for it can only be a mistake.
func (b *builder) staticKeys(path string, inline yaml.Node, file string) (*jwks.Set, string, bool) {
	data, where, ok := b.inlineOrFile(path, inline, file)
	if !ok {
		return nil, "", false
	}
	set, err := jwks.Parse(data)
	if err != nil {
		b.errf(where, "%v", err)
		return nil, "", false
	}
	for _, s := range set.Skipped() {
		b.errf(where, "%s", s)
	}
	return set, where, len(set.Skipped()) == 0
}

func newMatcher(field, value string) (matcher, error) {
	if strings.ContainsRune(value, 0) {
		return nil, errors.New("contains a NUL byte")
	}
	switch field {
	case "tls_client_auth_subject_dn":
		n, err := dn.Parse(value)
		if err != nil {
			return nil, err
		}
		return subjectMatcher{k: n.Key(), text: value}, nil
	case "tls_client_auth_san_dns":
		if strings.TrimSpace(value) != value || strings.ContainsAny(value, " /") {
			return nil, fmt.Errorf("%q is not a DNS name", value)
		}
		return dnsMatcher{name: strings.ToLower(value)}, nil
	case "tls_client_auth_san_uri":
		u, err := url.Parse(value)
		if err != nil || u.Scheme == "" {
			return nil, fmt.Errorf("%q is not an absolute URI", value)
		}
		return uriMatcher{k: uriKeyOf(u), text: value}, nil
	case "tls_client_auth_san_ip":
		a, err := netip.ParseAddr(value)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address: %v", value, err)
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("%q: IP zones are not part of certificates", value)
		}
		return ipMatcher{addr: a}, nil
	case "tls_client_auth_san_email":
		local, domain, ok := strings.Cut(value, "@")
		if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
			return nil, fmt.Errorf("%q is not an email address", value)
		}
		return emailMatcher{local: local, domain: domain}, nil
	}
	return nil, fmt.Errorf("unknown field %s", field)
}

// remoteOptions are the jwks_fetch settings for one remote key set; fetches are reported under
// label (the jwks_uri, or the issuer for discovery).
func (b *builder) remoteOptions(c *Config, label string, client *http.Client) jwks.RemoteOptions {
	o := jwks.RemoteOptions{Timeout: c.Fetch.Timeout, RefreshInterval: c.Fetch.RefreshInterval, MinInterval: c.Fetch.MinInterval}
	o.Client, o.Now = b.httpClient, b.now
	if client != nil { // the fetch's own TLS settings win over the injected client
		o.Client = client
	}
	o.Client = b.instrument(o.Client, o.Timeout)
	o.OnFetch = func(err error) { b.obs.ObserveFetch("jwks", label, err) }
	o.OnSkip = func(skipped []string) { b.obs.ObserveSkippedKeys(label, skipped) }
	return o
}

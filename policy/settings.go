package policy

import "time"

// SourceMode says how one certificate source is treated.
type SourceMode string

// Certificate source modes.
const (
	SourceAccept  SourceMode = "accept"  // used when present
	SourceRequire SourceMode = "require" // must be present, else no_certificate
	SourceIgnore  SourceMode = "ignore"  // never read
)

// CRLExpiredAction says what a CRL past its nextUpdate does.
type CRLExpiredAction string

// CRL expiry actions.
const (
	CRLExpiredDeny   CRLExpiredAction = "deny"   // certificates it covers are denied (fail closed)
	CRLExpiredIgnore CRLExpiredAction = "ignore" // the stale CRL is still applied
)

// Sources says where the client certificate may come from.
type Sources struct {
	Peer SourceMode // CheckRequest attributes.source.certificate (Envoy include_peer_certificate)
	XFCC SourceMode // x-forwarded-client-cert
}

// XFCCSettings configures the adapter's XFCC parser.
type XFCCSettings struct {
	// TrustedProxies, when set, lists the proxy identities (URI SANs of the proxy's own
	// certificate, as Envoy writes them in By, or the CheckRequest's destination principal)
	// whose XFCC certbind honours.
	TrustedProxies []string
	Elements       XFCCElements
	MaxHeaderBytes int
	MaxChainLength int // intermediates plus leaf
}

// XFCCElements says which element of x-forwarded-client-cert is the client's.
type XFCCElements string

// XFCC element policies.
const (
	ElementsSingle XFCCElements = "single" // exactly one element (Envoy SANITIZE_SET)
	ElementsLast   XFCCElements = "last"   // the last one, confirmed by the peer certificate (APPEND_FORWARD)
)

// CertFormat says how the HTTP authorization endpoint finds the client certificate in a header.
type CertFormat string

// Certificate header formats.
const (
	CertFormatXFCC          CertFormat = "xfcc"           // Envoy x-forwarded-client-cert
	CertFormatRFC9440       CertFormat = "rfc9440"        // Client-Cert: :<base64 DER>: (and Client-Cert-Chain)
	CertFormatPEMURLEncoded CertFormat = "pem_urlencoded" // nginx $ssl_client_escaped_cert
)

// HTTPAuthzSettings configures the HTTP authorization endpoint (Envoy http_service, nginx
// auth_request). Header names are lower-case.
type HTTPAuthzSettings struct {
	CertificateHeader    string
	CertificateFormat    CertFormat
	ChainHeader          string // CertificateHeader + "-chain": RFC 9440's Client-Cert-Chain
	ModeHeader           string
	OriginalURIHeader    string // "" means the request's own path
	OriginalMethodHeader string // "" means the request's own method
	// OriginalSchemeHeader and OriginalAuthorityHeader give the URI scheme and authority the
	// client used, for a DPoP proof's htu. "" means https (certbind sits behind a TLS proxy)
	// and the request's Host.
	OriginalSchemeHeader    string
	OriginalAuthorityHeader string
	MaxBodyBytes            int
	// AuthRequestStatuses limits denials to 401 and 403, the only ones nginx auth_request
	// passes on (it turns any other status into 500); the full status is in x-certbind-status.
	AuthRequestStatuses bool
}

// CacheSettings bounds certbind's caches: entries, and the longest an entry lives. Entries
// also never outlive what they cache (a certificate's notAfter, a CRL's nextUpdate, a token's
// exp), and a reload starts empty caches, so changed trust never serves a stale allow.
type CacheSettings struct {
	Certificates int // parsed certificate material (adapter), by request bytes
	Chains       int // verified chains, by certificate and trust anchors
	Tokens       int // verified JWTs, by token hash
	TTL          time.Duration
}

// FetchSettings configures jwks_uri fetching.
type FetchSettings struct {
	Timeout, RefreshInterval, MinInterval time.Duration
}

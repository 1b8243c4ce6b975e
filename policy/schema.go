package policy

// The configuration file's schema as decoded (strictly: unknown keys are errors), and its
// defaults, in one place: applyDefaults fills what the file left out before anything is
// validated or built.

import (
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/certbind/certbind/policy/revocation"
)

// The YAML document, decoded strictly. Keys use the RFC 7591 / RFC 8705 client metadata names.
type fileConfig struct {
	TrustAnchors       []string       `yaml:"trust_anchors"`
	Intermediates      []string       `yaml:"intermediates"`
	CRLFiles           []string       `yaml:"crl_files"`
	CRLExpired         string         `yaml:"crl_expired"`
	CertificateSources fileSources    `yaml:"certificate_sources"`
	XFCC               fileXFCC       `yaml:"xfcc"`
	JWKSFetch          fileFetch      `yaml:"jwks_fetch"`
	Clients            []fileClient   `yaml:"clients"` // decoded one at a time from clientNodes
	Routes             []fileRoute    `yaml:"routes"`
	ClientAuth         fileClientAuth `yaml:"client_auth"`
	Tokens             fileTokens     `yaml:"tokens"`
	HTTPAuthz          fileHTTPAuthz  `yaml:"http_authz"`
	Cache              fileCache      `yaml:"cache"`
	Revocation         fileRevocation `yaml:"revocation"`

	// clientNodes are the items of clients, checked but not decoded (decodeStrict).
	clientNodes []*yaml.Node
}

type fileRevocation struct {
	Mode        string        `yaml:"mode"`
	Failure     string        `yaml:"failure"`
	Timeout     time.Duration `yaml:"timeout"`
	MaxCacheTTL time.Duration `yaml:"max_cache_ttl"`
}

type fileCache struct {
	Certificates int           `yaml:"certificates"`
	Chains       int           `yaml:"chains"`
	Tokens       int           `yaml:"tokens"`
	TTL          time.Duration `yaml:"ttl"`
}

type fileHTTPAuthz struct {
	CertificateHeader    string `yaml:"certificate_header"`
	CertificateFormat    string `yaml:"certificate_format"`
	ModeHeader           string `yaml:"mode_header"`
	OriginalURIHeader    string `yaml:"original_uri_header"`
	OriginalMethodHeader string `yaml:"original_method_header"`
	// For DPoP's htu: the scheme and the authority (port included) the client used.
	OriginalSchemeHeader    string `yaml:"original_scheme_header"`
	OriginalAuthorityHeader string `yaml:"original_authority_header"`
	MaxBodyBytes            int    `yaml:"max_body_bytes"`
	AuthRequestStatuses     bool   `yaml:"auth_request_statuses"`
}

type fileSources struct {
	Peer string `yaml:"peer"`
	XFCC string `yaml:"xfcc"`
}

type fileXFCC struct {
	TrustedProxies []string `yaml:"trusted_proxies"`
	Elements       string   `yaml:"elements"`
	MaxHeaderBytes int      `yaml:"max_header_bytes"`
	MaxChainLength int      `yaml:"max_chain_length"`
}

type fileFetch struct {
	Timeout         time.Duration `yaml:"timeout"`
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	MinInterval     time.Duration `yaml:"min_interval"`
}

type fileClient struct {
	ClientID                string   `yaml:"client_id"`
	TokenEndpointAuthMethod string   `yaml:"token_endpoint_auth_method"`
	SubjectDN               string   `yaml:"tls_client_auth_subject_dn"`
	SANDNS                  string   `yaml:"tls_client_auth_san_dns"`
	SANURI                  string   `yaml:"tls_client_auth_san_uri"`
	SANIP                   string   `yaml:"tls_client_auth_san_ip"`
	SANEmail                string   `yaml:"tls_client_auth_san_email"`
	TrustAnchors            []string `yaml:"trust_anchors"`
	JWKS                    nodeRef  `yaml:"jwks"` // 8 bytes, not a yaml.Node's 152, in every registration
	JWKSFile                string   `yaml:"jwks_file"`
	JWKSURI                 string   `yaml:"jwks_uri"`
	JWKSURITLSCA            string   `yaml:"jwks_uri_tls_ca"`   // a private CA of the jwks_uri server
	JWKSURITLSCert          string   `yaml:"jwks_uri_tls_cert"` // a client certificate for it
	JWKSURITLSKey           string   `yaml:"jwks_uri_tls_key"`
	RevocationFailure       string   `yaml:"revocation_failure"`
}

// nodeRef holds a YAML value as its node, by reference.
type nodeRef struct{ node *yaml.Node }

// UnmarshalYAML keeps the node.
func (r *nodeRef) UnmarshalYAML(n *yaml.Node) error {
	r.node = n
	return nil
}

// Node is the value's node, the zero Node when absent.
func (r nodeRef) Node() yaml.Node {
	if r.node == nil {
		return yaml.Node{}
	}
	return *r.node
}

type fileClientAuth struct {
	MaxFormBytes int `yaml:"max_form_bytes"`
}

type fileRoute struct {
	PathPrefix          string   `yaml:"path_prefix"`
	PathSeparatedPrefix string   `yaml:"path_separated_prefix"`
	Clients             []string `yaml:"clients"`
	Host                string   `yaml:"host"`
	Mode                string   `yaml:"mode"`
	Scopes              []string `yaml:"scopes"`
	Binding             string   `yaml:"binding"`
	RequireClientMatch  *bool    `yaml:"require_client_match"`
}

// Defaults, in one place.
const (
	internedIntermediates     = 1024 // distinct intermediate CAs kept parsed
	DefaultCacheCertificates  = 4096 // parsed certificate material (the largest entries)
	DefaultCacheChains        = 16384
	DefaultCacheTokens        = 16384
	DefaultCacheTTL           = 5 * time.Minute
	DefaultXFCCMaxHeaderBytes = 64 << 10
	DefaultXFCCMaxChainLength = 10
	DefaultMaxFormBytes       = 64 << 10 // client_auth.max_form_bytes and http_authz.max_body_bytes
)

func (f *fileConfig) applyDefaults() {
	if f.CRLExpired == "" {
		f.CRLExpired = string(CRLExpiredDeny)
	}
	if f.CertificateSources.Peer == "" {
		f.CertificateSources.Peer = string(SourceAccept)
	}
	if f.CertificateSources.XFCC == "" {
		f.CertificateSources.XFCC = string(SourceAccept)
	}
	if f.XFCC.Elements == "" {
		f.XFCC.Elements = string(ElementsSingle)
	}
	if f.XFCC.MaxHeaderBytes == 0 {
		f.XFCC.MaxHeaderBytes = DefaultXFCCMaxHeaderBytes
	}
	if f.XFCC.MaxChainLength == 0 {
		f.XFCC.MaxChainLength = DefaultXFCCMaxChainLength
	}
	if f.JWKSFetch.Timeout == 0 {
		f.JWKSFetch.Timeout = 5 * time.Second
	}
	if f.JWKSFetch.RefreshInterval == 0 {
		f.JWKSFetch.RefreshInterval = 5 * time.Minute
	}
	if f.JWKSFetch.MinInterval == 0 {
		f.JWKSFetch.MinInterval = 30 * time.Second
	}
	if f.Cache.Certificates == 0 {
		f.Cache.Certificates = DefaultCacheCertificates
	}
	if f.Cache.Chains == 0 {
		f.Cache.Chains = DefaultCacheChains
	}
	if f.Cache.Tokens == 0 {
		f.Cache.Tokens = DefaultCacheTokens
	}
	if f.Cache.TTL == 0 {
		f.Cache.TTL = DefaultCacheTTL
	}
	if f.Revocation.Mode == "" {
		f.Revocation.Mode = string(revocation.ModeOff)
	}
	if f.Revocation.Failure == "" {
		f.Revocation.Failure = string(revocation.FailHard)
	}
	h := &f.HTTPAuthz
	if h.CertificateFormat == "" {
		h.CertificateFormat = string(CertFormatXFCC)
	}
	if h.CertificateHeader == "" {
		h.CertificateHeader = map[string]string{
			string(CertFormatXFCC): "x-forwarded-client-cert", string(CertFormatRFC9440): "client-cert",
			string(CertFormatPEMURLEncoded): "x-ssl-client-cert",
		}[h.CertificateFormat]
	}
	if h.MaxBodyBytes == 0 {
		h.MaxBodyBytes = DefaultMaxFormBytes
	}
	if f.ClientAuth.MaxFormBytes == 0 {
		f.ClientAuth.MaxFormBytes = DefaultMaxFormBytes
	}
	for i := range f.Routes {
		if r := &f.Routes[i]; r.PathPrefix == "" && r.PathSeparatedPrefix == "" {
			r.PathPrefix = "/"
		}
	}
}

type fileTokens struct {
	Realm                string             `yaml:"realm"`
	ForwardAuthorization *bool              `yaml:"forward_authorization"`
	MaxTokenBytes        int                `yaml:"max_token_bytes"`
	Issuers              []fileIssuer       `yaml:"issuers"`
	Introspection        *fileIntrospection `yaml:"introspection"`
	DPoP                 fileDPoP           `yaml:"dpop"`
}

type fileIssuer struct {
	Issuer             string        `yaml:"issuer"`
	JWKS               yaml.Node     `yaml:"jwks"`
	JWKSFile           string        `yaml:"jwks_file"`
	JWKSURI            string        `yaml:"jwks_uri"`
	Discovery          bool          `yaml:"discovery"`
	Audiences          []string      `yaml:"audiences"`
	Algorithms         []string      `yaml:"algorithms"`
	Types              []string      `yaml:"types"`
	AllowMissingType   bool          `yaml:"allow_missing_type"`
	Leeway             time.Duration `yaml:"leeway"`
	Binding            string        `yaml:"binding"`
	RequireClientMatch bool          `yaml:"require_client_match"`
	// How jwks_uri and discovery fetches connect (a private CA, a client certificate).
	TLSCA   string `yaml:"tls_ca"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

type fileIntrospection struct {
	Endpoint           string        `yaml:"endpoint"`
	Issuer             string        `yaml:"issuer"`
	Audiences          []string      `yaml:"audiences"`
	ClientID           string        `yaml:"client_id"`
	ClientSecret       string        `yaml:"client_secret"`
	ClientSecretFile   string        `yaml:"client_secret_file"`
	TLSCert            string        `yaml:"tls_cert"`
	TLSKey             string        `yaml:"tls_key"`
	TLSCA              string        `yaml:"tls_ca"`
	Timeout            time.Duration `yaml:"timeout"`
	CacheTTL           time.Duration `yaml:"cache_ttl"`
	CacheSize          int           `yaml:"cache_size"`
	Leeway             time.Duration `yaml:"leeway"`
	Binding            string        `yaml:"binding"`
	RequireClientMatch bool          `yaml:"require_client_match"`
	// UnknownIssuers says what a JWT whose iss is not in tokens.issuers does: "refuse"
	// (token_issuer) or "introspect".
	UnknownIssuers string `yaml:"jwt_unknown_issuers"`
}

// Token defaults.
var (
	DefaultAlgorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}
	DefaultTokenTypes = []string{"at+jwt"}
)

const (
	DefaultLeeway             = 30 * time.Second
	DefaultIntrospectTimeout  = 2 * time.Second
	DefaultIntrospectCacheTTL = 60 * time.Second
)

func (t *fileTokens) applyDefaults() {
	if t.ForwardAuthorization == nil {
		yes := true
		t.ForwardAuthorization = &yes
	}
	for i := range t.Issuers {
		is := &t.Issuers[i]
		if len(is.Algorithms) == 0 {
			is.Algorithms = DefaultAlgorithms
		}
		if len(is.Types) == 0 {
			is.Types = DefaultTokenTypes
		}
		if is.Leeway == 0 {
			is.Leeway = DefaultLeeway
		}
		if is.Binding == "" {
			is.Binding = string(BindingRequired)
		}
	}
	if in := t.Introspection; in != nil {
		if in.Timeout == 0 {
			in.Timeout = DefaultIntrospectTimeout
		}
		if in.CacheTTL == 0 {
			in.CacheTTL = DefaultIntrospectCacheTTL
		}
		if in.Leeway == 0 {
			in.Leeway = DefaultLeeway
		}
		if in.Binding == "" {
			in.Binding = string(BindingRequired)
		}
		if in.UnknownIssuers == "" {
			// With issuers configured, a JWT of another one is a typo or a foreign token: refuse
			// it by name rather than ask the authorization server about every one. With none,
			// introspection is how every token, JWTs included, is verified.
			in.UnknownIssuers = "refuse"
			if len(t.Issuers) == 0 {
				in.UnknownIssuers = "introspect"
			}
		}
	}
}

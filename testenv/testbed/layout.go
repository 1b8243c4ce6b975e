package testbed

import "sort"

// Files of the PKI directory, relative to it. certbind.yaml, the docker-compose file and the
// demo refer to these names.
const (
	FileCA           = "ca.pem"           // test root CA, the only trust anchor
	FileIntermediate = "intermediate.pem" // intermediate CA, issuer of every trusted leaf

	// Leaf + intermediate, and key, of Envoy's listener, of Envoy's client certificate towards
	// certbind, and of certbind's gRPC server.
	FileEnvoyCert       = "envoy.pem"
	FileEnvoyKey        = "envoy-key.pem"
	FileEnvoyClientCert = "envoy-client.pem"
	FileEnvoyClientKey  = "envoy-client-key.pem"
	FileCertbindCert    = "certbind.pem"
	FileCertbindKey     = "certbind-key.pem"

	FilePartnerJWKS = "partner.jwks.json" // partner's registration: its certificate as x5c, kid Partner

	FileASKey  = "as-signing-key.pem" // the demo authorization server's ES256 key (PKCS #8)
	FileASJWKS = "as.jwks.json"       // its public key, kid ASKeyID
)

// Client certificates: each NAME has NAME.pem (the chain a TLS client sends, leaf first) and
// NAME-key.pem. Billing, Reports, Inventory and Partner are registered in certbind.yaml under
// the same client_id; Untrusted and Expired carry billing's subject and must be refused.
const (
	Billing   = "billing"   // CN=billing,OU=Payments,O=Example Corp,C=SE: tls_client_auth_subject_dn
	Reports   = "reports"   // URI SAN spiffe://example.org/reports: tls_client_auth_san_uri
	Inventory = "inventory" // DNS SAN inventory.example.org: tls_client_auth_san_dns
	Partner   = "partner"   // self-signed: self_signed_tls_client_auth
	Untrusted = "untrusted" // billing's subject from a root nobody trusts
	Expired   = "expired"   // billing's subject, notAfter an hour before generation
)

// Names and values the certificates and certbind.yaml share.
const (
	BillingSubject = "CN=billing,OU=Payments,O=Example Corp,C=SE"
	ReportsURI     = "spiffe://example.org/reports"
	InventoryDNS   = "inventory.example.org"
	EnvoySPIFFEID  = "spiffe://certbind.test/envoy"

	ASKeyID  = "as-1"                      // kid of the authorization server's signing key
	Issuer   = "https://as.certbind.test"  // the demo authorization server's issuer (certbind.yaml tokens.issuers)
	Audience = "https://api.certbind.test" // the demo API, the audience of its access tokens
)

// Clients lists the client certificate names in a stable order.
func Clients() []string {
	return []string{Billing, Reports, Inventory, Partner, Untrusted, Expired}
}

// CertFile is the chain file of a client certificate name: NAME.pem.
func CertFile(name string) string { return name + ".pem" }

// KeyFile is the private key file of a client certificate name: NAME-key.pem.
func KeyFile(name string) string { return name + "-key.pem" }

// File is one file GeneratePKI writes.
type File struct {
	Name    string // relative to the PKI directory
	Private bool   // a private key: mode 0600; everything else is 0644
}

// Files lists every file GeneratePKI writes, sorted by name (the .gitignore it also writes is
// not listed).
func Files() []File {
	files := []File{
		{Name: FileCA}, {Name: FileIntermediate},
		{Name: FileEnvoyCert}, {Name: FileEnvoyKey, Private: true},
		{Name: FileEnvoyClientCert}, {Name: FileEnvoyClientKey, Private: true},
		{Name: FileCertbindCert}, {Name: FileCertbindKey, Private: true},
		{Name: FilePartnerJWKS},
		{Name: FileASKey, Private: true}, {Name: FileASJWKS},
	}
	for _, c := range Clients() {
		files = append(files, File{Name: CertFile(c)}, File{Name: KeyFile(c), Private: true})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files
}

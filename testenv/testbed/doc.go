// Package testbed generates the throw-away PKI of certbind's test bed and `make demo`: a test
// root and intermediate, Envoy's listener and client certificates, certbind's server
// certificate, one client certificate per way a client can be registered (RFC 8705 sections
// 2.1 and 2.2) plus the two that must be refused (untrusted, expired), and the signing key of
// the demo authorization server. The file names are the constants of layout.go; certbind.yaml
// in this directory, the docker-compose file and cmd/testbed all use them.
//
//	err := testbed.GeneratePKI("testenv/testbed/pki", time.Now(), 24*time.Hour)
//	// or: go run ./cmd/testbed pki --out testenv/testbed/pki --valid 24h
//
// Trust assumptions: none of this protects anything. Every key is fresh (ECDSA P-256), lives
// only as long as the validity given (24h by default), and is written in the clear with mode
// 0600 (certificates and JWK Sets 0644). The PKI is never committed: GeneratePKI writes a
// `.gitignore` of `*` into its output directory, and this directory's .gitignore lists pki/.
// Keep both; when generating elsewhere inside the repository, add the directory to a
// .gitignore yourself. Containers that run as another user than the one who generated the
// files need the keys made readable to them (or the PKI generated inside the container).
//
// The certificates and what certbind.yaml makes of them:
//
//	ca.pem                 "certbind test root", the trust anchor of certbind and Envoy
//	intermediate.pem       "certbind test intermediate", issues every leaf below
//	envoy.pem              Envoy's listener (serverAuth; envoy, localhost, 127.0.0.1, ::1)
//	envoy-client.pem       Envoy towards certbind (clientAuth; spiffe://certbind.test/envoy, envoy)
//	certbind.pem           certbind's gRPC server (serverAuth; certbind, localhost, 127.0.0.1)
//	billing.pem            client billing, tls_client_auth by subject DN
//	reports.pem            client reports, tls_client_auth by URI SAN
//	inventory.pem          client inventory, tls_client_auth by DNS SAN
//	partner.pem            client partner, self-signed, pinned by partner.jwks.json (x5c)
//	untrusted.pem          billing's subject from another root: certificate_untrusted
//	expired.pem            billing's subject, expired an hour ago: certificate_expired
//	as-signing-key.pem     ES256 key of the demo authorization server, public in as.jwks.json
//
// Every other NAME.pem holds what its TLS peer sends, leaf first: the leaf and the intermediate,
// or the leaf alone for partner (self-signed) and untrusted (issued by the untrusted root, which
// is written nowhere). Its key is in NAME-key.pem.
package testbed

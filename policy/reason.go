package policy

// Reason says why a request was allowed or denied. Every deny carries exactly one; the adapter
// maps each to a gRPC code, an HTTP status and an OAuth error through one table, and logs it.
type Reason string

// Reasons. The string values are stable: they appear in logs, metrics and Envoy's dynamic
// metadata.
const (
	ReasonOK Reason = "ok"

	// Routing.
	ReasonNoPolicy    Reason = "no_policy"    // no certbind_mode from Envoy and no configured route matches
	ReasonUnknownMode Reason = "unknown_mode" // certbind_mode names no mode

	// Where the certificate comes from.
	ReasonNoCertificate        Reason = "no_certificate"         // no client certificate (or a required source absent)
	ReasonCertificateMalformed Reason = "certificate_malformed"  // bytes that are not one X.509 certificate
	ReasonXFCCMalformed        Reason = "xfcc_malformed"         // x-forwarded-client-cert that the strict parser rejects
	ReasonXFCCElements         Reason = "xfcc_elements"          // wrong number of XFCC elements for the configured policy
	ReasonCertificateMismatch  Reason = "certificate_mismatch"   // the peer certificate and XFCC name different certificates
	ReasonChainTooLong         Reason = "certificate_chain_long" // more intermediates than allowed

	// Certificate validation (tls_client_auth and identity).
	ReasonCertificateExpired     Reason = "certificate_expired"
	ReasonCertificateNotYetValid Reason = "certificate_not_yet_valid"
	ReasonCertificateUntrusted   Reason = "certificate_untrusted"   // no chain to a trust anchor
	ReasonCertificateUsage       Reason = "certificate_wrong_usage" // no clientAuth extended key usage
	ReasonCertificateIsCA        Reason = "certificate_is_ca"       // a CA certificate presented as a client
	ReasonCertificateInvalid     Reason = "certificate_invalid"     // chain fails for another reason (path length, name constraints, intermediate not a CA)
	ReasonCertificateRevoked     Reason = "certificate_revoked"
	ReasonCRLExpired             Reason = "crl_expired" // the issuer's CRL is past nextUpdate and crl_expired is deny

	// Client authentication (RFC 8705 section 2).
	ReasonRequestMalformed   Reason = "request_malformed"     // unreadable form body, truncated body
	ReasonClientIDMissing    Reason = "client_id_missing"     // no client_id in body, query or Basic user name
	ReasonClientIDConflict   Reason = "client_id_conflict"    // two different client_id values
	ReasonUnknownClient      Reason = "unknown_client"        // client_id not registered
	ReasonCertificateUnbound Reason = "certificate_not_bound" // certificate does not match the client's registration

	// Identity (service to service).
	ReasonNoMatchingClient Reason = "no_matching_client" // the certificate belongs to no registered client
	ReasonAmbiguousClient  Reason = "ambiguous_client"   // the certificate matches more than one client
)

// Reasons lists every reason, for exhaustive tables and tests.
func Reasons() []Reason {
	return []Reason{
		ReasonOK, ReasonNoPolicy, ReasonUnknownMode,
		ReasonNoCertificate, ReasonCertificateMalformed, ReasonXFCCMalformed, ReasonXFCCElements,
		ReasonCertificateMismatch, ReasonChainTooLong,
		ReasonCertificateExpired, ReasonCertificateNotYetValid, ReasonCertificateUntrusted,
		ReasonCertificateUsage, ReasonCertificateIsCA, ReasonCertificateInvalid,
		ReasonCertificateRevoked, ReasonCRLExpired,
		ReasonRequestMalformed, ReasonClientIDMissing, ReasonClientIDConflict, ReasonUnknownClient,
		ReasonCertificateUnbound,
		ReasonNoMatchingClient, ReasonAmbiguousClient,
	}
}

// Description is the client-facing explanation of a reason: safe to show to anyone, it never
// includes internal causes.
func (r Reason) Description() string {
	switch r {
	case ReasonOK:
		return "allowed"
	case ReasonNoPolicy:
		return "no authorization policy applies to this route"
	case ReasonUnknownMode:
		return "the route selects an unknown certbind mode"
	case ReasonNoCertificate:
		return "a client certificate is required"
	case ReasonCertificateMalformed:
		return "the client certificate could not be parsed"
	case ReasonXFCCMalformed:
		return "the forwarded client certificate header is malformed"
	case ReasonXFCCElements:
		return "the forwarded client certificate header has an unexpected number of elements"
	case ReasonCertificateMismatch:
		return "the forwarded client certificate differs from the TLS peer certificate"
	case ReasonChainTooLong:
		return "the client certificate chain is too long"
	case ReasonCertificateExpired:
		return "the client certificate has expired"
	case ReasonCertificateNotYetValid:
		return "the client certificate is not yet valid"
	case ReasonCertificateUntrusted:
		return "the client certificate is not issued by a trusted certificate authority"
	case ReasonCertificateUsage:
		return "the client certificate is not valid for TLS client authentication"
	case ReasonCertificateIsCA:
		return "a certificate authority certificate cannot authenticate a client"
	case ReasonCertificateInvalid:
		return "the client certificate chain is invalid"
	case ReasonCertificateRevoked:
		return "the client certificate has been revoked"
	case ReasonCRLExpired:
		return "revocation status of the client certificate is unavailable"
	case ReasonRequestMalformed:
		return "the request could not be read"
	case ReasonClientIDMissing:
		return "client_id is required"
	case ReasonClientIDConflict:
		return "the request carries conflicting client_id values"
	case ReasonUnknownClient:
		return "unknown client"
	case ReasonCertificateUnbound:
		return "the client certificate is not registered for this client"
	case ReasonNoMatchingClient:
		return "the client certificate does not belong to a registered client"
	case ReasonAmbiguousClient:
		return "the client certificate matches more than one registered client"
	}
	return string(r)
}

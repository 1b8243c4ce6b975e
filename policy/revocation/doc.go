// Package revocation decides whether a certificate of an already verified chain is revoked, by
// OCSP (RFC 6960) at the certificate's AIA OCSP URL and by the CRLs (RFC 5280 §5) at its CRL
// distribution points. It fetches over HTTP only what the certificates name; chain building and
// the static crl_files check stay in package policy.
//
// # What is checked
//
// OCSP: a SHA-1 CertID request is POSTed (application/ocsp-request, §A.1). The response must be
// a successful basic response whose CertID names the certificate's serial, issuer name hash and
// issuer key hash; it must be signed by the issuer or by a responder certificate issued directly
// by the issuer, carrying id-kp-OCSPSigning and valid now (§4.2.2.2); thisUpdate may not be more
// than ClockSkew in the future and nextUpdate may not have passed (a response without nextUpdate
// counts as valid for MaxCacheTTL after thisUpdate). certStatus "unknown" and error statuses
// (tryLater, unauthorized...) are no answer.
//
// CRL: http(s) distribution points only (ldap: and others are no answer). The CRL (DER or PEM,
// at most MaxCRLBytes) must be issued under the certificate's issuer name, signed by the issuer
// (CheckSignatureFrom, which also requires a CA with cRLSign), current (thisUpdate not in the
// future, nextUpdate present and not passed: a stale CRL is Unknown, never Good), and complete
// for the certificate: delta CRLs, indirect CRLs, CRLs limited to some reasons or to the other
// kind of certificate (CA / end entity), CRLs scoped to another distribution point and CRLs with
// unknown critical extensions are no answer (RFC 5280 §5.2.5, §6.3.3).
//
// Answers are cached until min(nextUpdate, fetch time + MaxCacheTTL), judged on the clock passed
// to Check: OCSP answers by (issuer key, serial), parsed CRLs by URL. "No answer" is remembered
// for NegativeTTL so that a dead responder is not asked on every request. Concurrent checks that
// need the same OCSP answer or CRL share one fetch. Every fetch is bounded by Timeout and by the
// byte limits; the caller's context bounds how long Check waits.
//
// Not done: OCSP nonces (responses are bounded by thisUpdate/nextUpdate instead), the revocation
// status of OCSP responder certificates (as with id-pkix-ocsp-nocheck), delta CRLs, LDAP.
//
// # Failure policy
//
// Check reports Good, Revoked or Unknown; Decide turns that into allow or deny. Revoked always
// denies. Unknown (responder down, timeout, no URL, stale or unverifiable answer) denies under
// FailHard and allows under FailSoft. Hard failure is the safe choice for tls_client_auth: with
// soft failure, anyone who can block or slow the responder for us makes a revoked certificate
// usable again, which is exactly when revocation matters. Its cost is availability: a CA's
// responder or CRL outage becomes our outage (and an expired CRL blocks everyone, as in pomerium
// #4471), so hard failure wants reachable responders and a Timeout well within Envoy's
// ext_authz timeout. Soft failure keeps clients working through such outages; the caller must
// log Result.Err, which is the only trace that a certificate went unchecked.
//
//	c := revocation.NewChecker(revocation.Options{Timeout: 2 * time.Second})
//	for i := 0; i+1 < len(chain); i++ {
//		r := c.Check(ctx, chain[i], chain[i+1], revocation.ModeOCSPThenCRL, now)
//		if err := revocation.Decide(r, revocation.FailHard); err != nil {
//			return err // errors.Is(err, revocation.ErrRevoked) or revocation.ErrUnknown
//		}
//	}
package revocation

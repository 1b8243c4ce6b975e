package policy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certbind/certbind/policy/dpop"
	"github.com/certbind/certbind/policy/token"
)

// boundToken is RFC 8705 section 3 and RFC 9449 section 7 at a resource server: the access
// token must be valid and sender-constrained as the route or its issuer requires, and every
// binding it carries must hold on this very request: cnf x5t#S256 with the certificate
// presented, cnf jkt with a DPoP proof signed by that key.
func (e *Engine) boundToken(ctx context.Context, cfg *Config, in Input, rt *route) Decision {
	ts := cfg.tokens
	if ts == nil || (ts.verifier.Len() == 0 && ts.introspector == nil) {
		return deny(ReasonTokenUnverifiable, errors.New("bound_token mode without tokens.issuers or tokens.introspection"))
	}
	now := e.now()
	raw, scheme, err := accessToken(in.Request.Headers)
	if err != nil {
		d := decisionOf(err)
		d.Challenge = scheme
		if d.Reason == ReasonTokenMissing || scheme == 0 {
			// No token: every scheme the resource accepts is offered (RFC 9449 section 7.1).
			d.Challenge = ts.offered(rt)
		}
		ts.nonce(&d, now)
		return d
	}
	d := e.boundTokenWith(ctx, cfg, in, rt, raw, scheme, now)
	d.Challenge = scheme
	if d.Reason == ReasonTokenDPoPAsBearer {
		d.Challenge = SchemeDPoP // tell the client how the token must be sent
	}
	ts.nonce(&d, now)
	return d
}

// nonce gives a decision a fresh DPoP nonce when nonces are on and the request uses DPoP or
// is offered it.
func (ts *tokenSettings) nonce(d *Decision, now time.Time) {
	if n := ts.dpop.nonces; n != nil && d.Challenge&SchemeDPoP != 0 {
		d.DPoPNonce = n.Issue(now)
	}
}

// offered is the schemes a resource accepts: those of the route's binding, else those of
// every issuer's.
func (ts *tokenSettings) offered(rt *route) Schemes {
	if rt != nil && rt.mode == ModeBoundToken && rt.binding != "" {
		return rt.binding.schemes()
	}
	var s Schemes
	for _, p := range ts.issuers {
		s |= p.binding.schemes()
	}
	if ts.introspector != nil {
		s |= ts.introspection.binding.schemes()
	}
	return s
}

func (e *Engine) boundTokenWith(ctx context.Context, cfg *Config, in Input, rt *route, raw string, scheme Schemes, now time.Time) Decision {
	claims, pol, err := cfg.verifyToken(ctx, raw, now)
	if err != nil {
		return deny(tokenReason(err), err)
	}
	binding, requireClient := pol.binding, pol.requireClientMatch
	var required []string
	if rt != nil && rt.mode == ModeBoundToken {
		if rt.binding != "" {
			binding = rt.binding
		}
		if rt.requireClientMatch != nil {
			requireClient = *rt.requireClientMatch
		}
		required = rt.scopes
	}
	d := Decision{ClientID: claims.ClientID, Subject: claims.Subject, Scopes: claims.Scopes, RequiredScopes: required}
	proof, err := checkBinding(claims.Confirmation, in.Certificate, binding, scheme)
	if err != nil {
		d.fail(err)
		return d
	}
	if proof {
		jkt, err := cfg.tokens.checkProof(ctx, in.Request, raw, claims.Confirmation, now)
		if err != nil {
			d.fail(err)
			return d
		}
		d.DPoPKey = jkt
	}
	if requireClient || (rt != nil && rt.clients != nil) {
		// The certificate's client: for require_client_match it must be the token's, and for
		// the route's clients it must be listed (and then so is the token's, when it must match).
		id := e.identity(ctx, cfg, in)
		if requireClient && (id.Reason != ReasonOK || id.ClientID != claims.ClientID) {
			d.Reason = ReasonTokenClientMismatch
			d.Cause = fmt.Errorf("token client_id %q, certificate: %s %q", claims.ClientID, id.Reason, id.ClientID)
			return d
		}
		if rt != nil && rt.clients != nil {
			err := rt.allows(id.ClientID)
			if id.Reason != ReasonOK {
				err = fmt.Errorf("the certificate identifies no client: %s", id.Reason)
				if id.Cause != nil {
					err = fmt.Errorf("the certificate identifies no client: %s: %w", id.Reason, id.Cause)
				}
			}
			if err != nil {
				d.Reason, d.Cause = ReasonClientNotAllowed, err
				return d
			}
		}
	}
	var missing []string
	for _, sc := range required {
		if !slices.Contains(claims.Scopes, sc) {
			missing = append(missing, sc)
		}
	}
	if len(missing) > 0 {
		d.Reason, d.Cause = ReasonInsufficientScope, fmt.Errorf("missing scopes %q", missing)
		return d
	}
	d.Reason = ReasonOK
	return d
}

// cachedToken is a verified JWT's outcome, kept until the token's exp or the cache TTL.
type cachedToken struct {
	claims *token.Claims
	pol    issuerPolicy
	until  time.Time
}

// verifyToken verifies raw, reusing an earlier verification of the same JWT. Only successes
// of local (signature) verification are cached, never beyond exp; introspection keeps its own
// cache.
func (c *Config) verifyToken(ctx context.Context, raw string, now time.Time) (*token.Claims, issuerPolicy, error) {
	ts := c.tokens
	// The size limit comes first, before the token is hashed or parsed, for JWTs and opaque
	// tokens alike.
	if len(raw) > ts.verifier.MaxBytes() {
		return nil, issuerPolicy{}, &token.Error{Kind: token.KindMalformed, Err: fmt.Errorf("token larger than %d bytes", ts.verifier.MaxBytes())}
	}
	jwt := token.LooksLikeJWT(raw)
	cacheable := c.rt.tokenCache != nil && jwt
	var key [32]byte
	if cacheable {
		key = sha256.Sum256([]byte(raw))
		if e, ok := c.rt.tokenCache.Get(key); ok && now.Before(e.until) && (e.claims.NotBefore.IsZero() || !now.Before(e.claims.NotBefore)) &&
			ts.verifier.KeysCurrent(ctx, e.claims) {
			c.cacheEvent(ctx, "tokens", true)
			return e.claims, e.pol, nil
		}
		c.cacheEvent(ctx, "tokens", false)
	}
	claims, pol, local, err := ts.verify(ctx, raw, jwt, now)
	if err == nil && cacheable && local {
		until := now.Add(c.Cache.TTL)
		if claims.Expiry.Before(until) {
			until = claims.Expiry
		}
		if now.Before(until) && c.rt.tokenDoor.Admit(key) {
			c.rt.tokenCache.Add(key, cachedToken{claims: claims, pol: pol, until: until})
		}
	}
	return claims, pol, err
}

// verify picks how to verify raw, within the size limit: a JWT (jwt: shaped like one) from a
// configured issuer by signature (local is true), anything else by introspection when
// configured.
func (ts *tokenSettings) verify(ctx context.Context, raw string, jwt bool, now time.Time) (_ *token.Claims, _ issuerPolicy, local bool, _ error) {
	if jwt {
		c, err := ts.verifier.Verify(ctx, raw, now)
		// Something only shaped like a JWT may still be an opaque token the authorization
		// server can introspect; a JWT of an issuer certbind does not know goes there only with
		// jwt_unknown_issuers: introspect.
		notOurs := errors.Is(err, token.ErrNotJWT) || (token.KindOf(err) == token.KindIssuer && ts.introspectUnknown)
		if !notOurs || ts.introspector == nil {
			if err != nil {
				return nil, issuerPolicy{}, false, err
			}
			return c, ts.issuers[c.Issuer], true, nil
		}
	}
	if ts.introspector == nil {
		return nil, issuerPolicy{}, false, &token.Error{Kind: token.KindMalformed, Err: errors.New("opaque token and no introspection configured")}
	}
	c, err := ts.introspector.Introspect(ctx, raw, now)
	return c, ts.introspection, false, err
}

func tokenReason(err error) Reason {
	if errors.Is(err, token.ErrConfirmation) {
		return ReasonTokenCNFMalformed
	}
	switch token.KindOf(err) {
	case token.KindAlgorithm:
		return ReasonTokenAlgorithm
	case token.KindType:
		return ReasonTokenType
	case token.KindIssuer:
		return ReasonTokenIssuer
	case token.KindUnknownKey:
		return ReasonTokenUnknownKey
	case token.KindSignature:
		return ReasonTokenSignature
	case token.KindExpired:
		return ReasonTokenExpired
	case token.KindNotYetValid:
		return ReasonTokenNotYetValid
	case token.KindAudience:
		return ReasonTokenAudience
	case token.KindInactive:
		return ReasonTokenInactive
	case token.KindRejected:
		return ReasonTokenRejected
	case token.KindUnavailable:
		return ReasonTokenUnverifiable
	}
	return ReasonTokenMalformed
}

// checkBinding applies RFC 8705 section 3.1 and RFC 9449 section 7 to a token presented with
// scheme: the token must be bound as binding accepts, a token with cnf x5t#S256 is only good
// with the certificate whose SHA-256 it names (compared as the canonical string in constant
// time), and a DPoP-bound token only with the DPoP scheme. proof reports that a DPoP proof must
// be checked: always with the DPoP scheme. A cnf that binds by a method certbind cannot check
// is refused whatever the policy: letting it pass would strip the binding.
func checkBinding(cnf *token.Confirmation, cert *Presented, binding Binding, scheme Schemes) (proof bool, _ error) {
	var x5t, jkt bool
	if cnf != nil {
		// A token bound by several methods needs every proof: checking one would strip the
		// other binding.
		for _, m := range cnf.Members {
			if m != "x5t#S256" && m != "jkt" {
				return false, Deny(ReasonTokenCNFUnsupported, fmt.Errorf("cnf binds by %.40q, which certbind cannot verify", m))
			}
		}
		x5t, jkt = cnf.X5tS256 != "", cnf.JKT != ""
	}
	switch {
	case jkt && scheme != SchemeDPoP:
		// RFC 9449 section 7.2: a DPoP-bound token presented as a bearer token.
		return false, Deny(ReasonTokenDPoPAsBearer, errors.New("DPoP-bound token with the Bearer scheme"))
	case scheme == SchemeDPoP && !jkt && binding != BindingOptional:
		return false, Deny(ReasonTokenNotDPoPBound, errors.New("the DPoP scheme with a token that has no cnf jkt"))
	case !binding.accepts(x5t, jkt) && !x5t && !jkt:
		return false, Deny(ReasonTokenUnbound, fmt.Errorf("token has no cnf binding and binding is %s", binding))
	case !binding.accepts(x5t, jkt):
		return false, Deny(ReasonTokenBindingMethod, fmt.Errorf("token bound by %s, binding is %s", boundBy(x5t, jkt), binding))
	}
	if x5t {
		bound, ok := ParseX5tS256(cnf.X5tS256)
		if !ok {
			return false, Deny(ReasonTokenCNFMalformed, errors.New("cnf x5t#S256 is not the base64url encoding, without padding, of 32 bytes"))
		}
		if cert == nil {
			return false, Deny(ReasonTokenCertMissing, errors.New("certificate-bound token without a client certificate"))
		}
		// RFC 8705 section 3.1: the digests compared in constant time.
		if subtle.ConstantTimeCompare(bound[:], cert.Thumbprint[:]) != 1 {
			return false, Deny(ReasonTokenBindingMismatch, fmt.Errorf("token bound to %s, certificate is %s", cnf.X5tS256, cert.X5tS256))
		}
	}
	return scheme == SchemeDPoP, nil
}

func boundBy(x5t, jkt bool) string {
	switch {
	case x5t && jkt:
		return "certificate and DPoP"
	case jkt:
		return "DPoP"
	}
	return "certificate"
}

// checkProof verifies the request's DPoP proof for raw (RFC 9449 section 4.3), bound to the
// token's cnf jkt when it has one, and returns the proof key's thumbprint.
func (ts *tokenSettings) checkProof(ctx context.Context, r Request, raw string, cnf *token.Confirmation, now time.Time) (string, error) {
	uri, err := r.uri()
	if err != nil {
		return "", Deny(ReasonDPoPURI, err)
	}
	var jkt string
	if cnf != nil {
		jkt = cnf.JKT
	}
	var headers []string
	if v, ok := r.Headers["dpop"]; ok {
		// Envoy and certbind's HTTP endpoint join repeated headers with ","; a proof (a
		// compact JWS) has none.
		headers = strings.Split(v, ",")
	}
	p, err := ts.dpop.verifier.Verify(ctx, headers, dpop.Request{Method: r.Method, URI: uri, AccessToken: raw, JKT: jkt}, now)
	if err != nil {
		return "", Deny(proofReason(dpop.KindOf(err)), err)
	}
	return p.JKT, nil
}

func proofReason(k dpop.Kind) Reason {
	switch k {
	case dpop.KindMissing:
		return ReasonDPoPProofMissing
	case dpop.KindType:
		return ReasonDPoPProofType
	case dpop.KindAlgorithm:
		return ReasonDPoPAlgorithm
	case dpop.KindKey:
		return ReasonDPoPKey
	case dpop.KindSignature:
		return ReasonDPoPSignature
	case dpop.KindMethod:
		return ReasonDPoPMethod
	case dpop.KindURI:
		return ReasonDPoPURI
	case dpop.KindNonce:
		return ReasonDPoPNonce
	case dpop.KindTime:
		return ReasonDPoPTime
	case dpop.KindTokenHash:
		return ReasonDPoPTokenHash
	case dpop.KindBinding:
		return ReasonDPoPKeyMismatch
	case dpop.KindReplay:
		return ReasonDPoPReplay
	case dpop.KindUnavailable:
		return ReasonDPoPReplayDown
	}
	return ReasonDPoPProofMalformed
}

// accessToken reads the access token and its scheme from the Authorization header only: Bearer
// (RFC 6750 section 2.1) or DPoP (RFC 9449 section 7.1), both with a token68 value. No header,
// or another scheme, is "no token"; a malformed or repeated value (Envoy joins repeated headers
// with ",") is an invalid request, with the scheme when it was read. No part of the value ever
// goes into an error, which the decision log prints: a scheme is named only as certbind's own
// spelling of a registered one.
func accessToken(h map[string]string) (string, Schemes, error) {
	v, ok := h["authorization"]
	if !ok || v == "" {
		return "", 0, Deny(ReasonTokenMissing, nil)
	}
	name, tok, found := strings.Cut(v, " ")
	var scheme Schemes
	switch {
	case strings.EqualFold(name, "Bearer"):
		scheme = SchemeBearer
	case strings.EqualFold(name, "DPoP"):
		scheme = SchemeDPoP
	default:
		lv := strings.ToLower(v)
		if strings.Contains(lv, "bearer ") || strings.Contains(lv, "dpop ") {
			return "", 0, Deny(ReasonTokenRequestInvalid, errors.New("several Authorization values"))
		}
		for _, known := range authSchemes {
			if strings.EqualFold(name, known) {
				return "", 0, Deny(ReasonTokenMissing, fmt.Errorf("Authorization scheme %s is neither Bearer nor DPoP", known))
			}
		}
		return "", 0, Deny(ReasonTokenMissing, errors.New("Authorization value has no Bearer or DPoP scheme"))
	}
	tok = strings.TrimLeft(tok, " ")
	if !found || !b64token(tok) {
		return "", scheme, Deny(ReasonTokenRequestInvalid, fmt.Errorf("Authorization: %s value is not a token68 (RFC 6750 section 2.1, RFC 9449 section 7.1)", schemeName(scheme)))
	}
	return tok, scheme, nil
}

func schemeName(s Schemes) string {
	if s == SchemeDPoP {
		return "DPoP"
	}
	return "Bearer"
}

// authSchemes are the HTTP authentication schemes of the IANA registry (and DPoP, RFC 9449)
// that a log may name when a request uses one instead of Bearer.
var authSchemes = [...]string{"Basic", "Concealed", "Digest", "DPoP", "GNAP", "HOBA", "Mutual",
	"Negotiate", "OAuth", "PrivateToken", "SCRAM-SHA-1", "SCRAM-SHA-256", "vapid"}

// b64token is RFC 6750's 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func b64token(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

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

	"github.com/certbind/certbind/policy/token"
)

// boundToken is RFC 8705 section 3 at a resource server: the Bearer token must be valid and, if
// it carries cnf x5t#S256, bound to the certificate presented on this very request.
func (e *Engine) boundToken(ctx context.Context, cfg *Config, in Input, rt *route) Decision {
	ts := cfg.tokens
	if ts == nil || (ts.verifier.Len() == 0 && ts.introspector == nil) {
		return deny(ReasonTokenUnverifiable, errors.New("bound_token mode without tokens.issuers or tokens.introspection"))
	}
	raw, err := bearerToken(in.Request.Headers)
	if err != nil {
		return decisionOf(err)
	}
	now := e.now()
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
	if err := checkBinding(claims.Confirmation, in.Certificate, binding); err != nil {
		d.fail(err)
		return d
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
		if now.Before(until) {
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

// checkBinding applies RFC 8705 section 3.1: a token with cnf x5t#S256 is only good with the
// certificate whose SHA-256 it names, compared as the canonical string in constant time. A cnf
// that binds by another method is refused whatever the policy: certbind cannot check it, and
// letting it pass would strip the binding.
func checkBinding(cnf *token.Confirmation, cert *Presented, binding Binding) error {
	if cnf == nil {
		if binding == BindingOptional {
			return nil
		}
		return Deny(ReasonTokenUnbound, errors.New("token has no cnf claim and binding is required"))
	}
	if cnf.X5tS256 == "" {
		return Deny(ReasonTokenCNFUnsupported, fmt.Errorf("cnf members %.200q, no x5t#S256", cnf.Members))
	}
	// A token bound by x5t#S256 and another method (jkt for DPoP, jwk, kid, ...) needs every
	// proof: checking only the certificate would strip the other binding.
	for _, m := range cnf.Members {
		if m != "x5t#S256" {
			return Deny(ReasonTokenCNFUnsupported, fmt.Errorf("cnf also binds by %.40q, which certbind cannot verify", m))
		}
	}
	bound, ok := ParseX5tS256(cnf.X5tS256)
	if !ok {
		return Deny(ReasonTokenCNFMalformed, errors.New("cnf x5t#S256 is not the base64url encoding, without padding, of 32 bytes"))
	}
	if cert == nil {
		return Deny(ReasonTokenCertMissing, errors.New("certificate-bound token without a client certificate"))
	}
	// RFC 8705 section 3.1: the digests compared in constant time.
	if subtle.ConstantTimeCompare(bound[:], cert.Thumbprint[:]) != 1 {
		return Deny(ReasonTokenBindingMismatch, fmt.Errorf("token bound to %s, certificate is %s", cnf.X5tS256, cert.X5tS256))
	}
	return nil
}

// bearerToken reads the access token from the Authorization header only (RFC 6750 section
// 2.1). No header, or another scheme, is "no token"; a malformed or repeated Bearer value (Envoy
// joins repeated headers with ",") is an invalid request. No part of the value ever goes into
// an error, which the decision log prints: a scheme is named only as certbind's own spelling
// of a registered one.
func bearerToken(h map[string]string) (string, error) {
	v, ok := h["authorization"]
	if !ok || v == "" {
		return "", Deny(ReasonTokenMissing, nil)
	}
	scheme, tok, found := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		if strings.Contains(strings.ToLower(v), "bearer ") {
			return "", Deny(ReasonTokenRequestInvalid, errors.New("several Authorization values"))
		}
		for _, known := range authSchemes {
			if strings.EqualFold(scheme, known) {
				return "", Deny(ReasonTokenMissing, fmt.Errorf("Authorization scheme %s is not Bearer", known))
			}
		}
		return "", Deny(ReasonTokenMissing, errors.New("Authorization value has no Bearer scheme"))
	}
	tok = strings.TrimLeft(tok, " ")
	if !found || !b64token(tok) {
		return "", Deny(ReasonTokenRequestInvalid, errors.New("Authorization: Bearer value is not a b64token (RFC 6750 section 2.1)"))
	}
	return tok, nil
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

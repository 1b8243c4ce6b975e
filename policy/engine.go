package policy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/certbind/certbind/policy/token"
)

// Input is everything a decision depends on.
type Input struct {
	// ModeHint is the route's certbind_mode from the proxy, "" when the proxy sent none.
	ModeHint string
	Request  Request
	// Certificate is the client certificate, nil when the request has none. The adapter has
	// already reconciled its sources (peer certificate, XFCC).
	Certificate *Presented
	// CertificateErr is set when the request's certificate material could not be accepted
	// (malformed, or two sources disagreeing): an *Error (Deny) with its reason. The request
	// is denied with it once a mode is chosen.
	CertificateErr error
}

// Decision is the outcome of one request. Allow is true exactly when Reason is ReasonOK.
type Decision struct {
	Allow    bool
	Reason   Reason
	Mode     Mode   // "" when no mode could be chosen
	ClientID string // the authenticated client, or the claimed one on a client_auth deny
	// Certificate is the presented certificate (nil if none): the adapter forwards it upstream on allow.
	Certificate *Presented
	// Cause is the internal detail behind a deny, for logs only: never sent to the client.
	Cause error

	// bound_token: the verified token's subject and scopes (on allow), and the scopes the
	// route requires (for an insufficient_scope challenge).
	Subject        string
	Scopes         []string
	RequiredScopes []string
	// DPoPKey is the thumbprint (cnf.jkt) of the key a DPoP proof showed possession of, on
	// allow of a DPoP-bound token.
	DPoPKey string
	// Challenge is the authentication schemes a bound_token denial challenges with: the one
	// the request used, or those the resource accepts when it sent no token.
	Challenge Schemes
	// DPoPNonce is a fresh server nonce for the response's DPoP-Nonce header, when nonces are
	// on and the request uses DPoP (or could).
	DPoPNonce string
}

// Schemes is a set of HTTP authentication schemes for access tokens.
type Schemes uint8

// Schemes.
const (
	SchemeBearer Schemes = 1 << iota // RFC 6750
	SchemeDPoP                       // RFC 9449
)

func deny(r Reason, cause error) Decision { return Decision{Reason: r, Cause: cause} }

// decisionOf is the decision of a helper's result: nil allows, an error denies with the
// reason it carries.
func decisionOf(err error) Decision {
	if e := reasonOf(err); e != nil {
		return Decision{Reason: e.Reason, Cause: e.Err}
	}
	return Decision{Reason: ReasonOK}
}

// fail sets d's reason and cause from err (a deny).
func (d *Decision) fail(err error) {
	e := reasonOf(err)
	d.Reason, d.Cause = e.Reason, e.Err
}

// EngineConfig is what an Engine needs.
type EngineConfig struct {
	Config *Config
	Now    func() time.Time // default time.Now
}

// Engine decides requests against the current configuration. The configuration can be swapped
// atomically while requests are in flight; each decision uses one configuration throughout.
type Engine struct {
	cfg atomic.Pointer[Config]
	now func() time.Time
}

// NewEngine makes an engine. Config may be nil until the first Swap; decisions then fail closed
// with no_policy.
func NewEngine(c EngineConfig) *Engine {
	e := &Engine{now: c.Now}
	if e.now == nil {
		e.now = time.Now
	}
	if c.Config != nil {
		e.cfg.Store(c.Config)
	}
	return e
}

// Swap installs a new configuration for the requests that start after it. The new
// configuration takes over the DPoP proofs the old one remembered (when it remembers as many),
// so a reload opens no window to replay a proof.
func (e *Engine) Swap(c *Config) {
	adoptReplay(e.cfg.Load(), c)
	e.cfg.Store(c)
}

// Config returns the configuration in force (nil before the first one).
func (e *Engine) Config() *Config { return e.cfg.Load() }

// Decide authorizes one request against the configuration in force.
func (e *Engine) Decide(ctx context.Context, in Input) Decision {
	return e.DecideWith(ctx, e.cfg.Load(), in)
}

// DecideWith authorizes one request against cfg: an adapter that read the request with one
// configuration decides with the same one, even if a reload swaps it meanwhile.
func (e *Engine) DecideWith(ctx context.Context, cfg *Config, in Input) Decision {
	if cfg == nil {
		return deny(ReasonNoPolicy, errors.New("no configuration loaded"))
	}
	d := e.decide(ctx, cfg, in)
	if d.Reason == ReasonOK {
		if err := upstreamSafe(d); err != nil {
			d.Reason, d.Cause = ReasonRequestMalformed, err
			if d.Mode == ModeBoundToken {
				d.Reason = ReasonTokenMalformed
			}
		}
	}
	d.Allow = d.Reason == ReasonOK
	d.Certificate = in.Certificate
	return d
}

func (e *Engine) decide(ctx context.Context, cfg *Config, in Input) Decision {
	mode, rt, d, ok := cfg.selectMode(in)
	if !ok {
		return d
	}
	if in.CertificateErr != nil {
		d := decisionOf(in.CertificateErr)
		d.Mode = mode
		return d
	}
	var out Decision
	switch mode {
	case ModeClientAuth:
		out = e.clientAuth(ctx, cfg, in)
	case ModeIdentity:
		out = e.identity(ctx, cfg, in)
	case ModeBoundToken:
		out = e.boundToken(ctx, cfg, in, rt)
	}
	out.Mode = mode
	if out.Reason == ReasonOK && mode != ModeBoundToken {
		if err := rt.allows(out.ClientID); err != nil {
			out.Reason, out.Cause = ReasonClientNotAllowed, err
		}
	}
	return out
}

// upstreamSafe is the last check before an allow: every value certbind sends upstream in a
// header (client id, subject, scopes) must be free of control characters, whatever produced
// it. Token claims are refused earlier, where they are read; this holds for every source.
func upstreamSafe(d Decision) error {
	if hasControl(d.ClientID) {
		return fmt.Errorf("client id %q holds a control character", d.ClientID)
	}
	if hasControl(d.Subject) {
		return fmt.Errorf("subject %q holds a control character", d.Subject)
	}
	for _, sc := range d.Scopes {
		if !token.ValidScope(sc) {
			return fmt.Errorf("scope %q is not an RFC 6749 scope-token", sc)
		}
	}
	return nil
}

// selectMode picks the mode and the configured route matching the request (nil when none
// does): the proxy's certbind_mode wins; else the route's mode; with neither, no_policy.
func (c *Config) selectMode(in Input) (Mode, *route, Decision, bool) {
	rt, err := c.matchRoute(in.Request)
	if err != nil {
		return "", nil, deny(ReasonRequestMalformed, err), false
	}
	if in.ModeHint != "" {
		m, err := ParseMode(in.ModeHint)
		if err != nil {
			return "", nil, deny(ReasonUnknownMode, err), false
		}
		return m, rt, Decision{}, true
	}
	if rt != nil {
		return rt.mode, rt, Decision{}, true
	}
	path, _, _ := strings.Cut(in.Request.Path, "?")
	return "", nil, deny(ReasonNoPolicy, fmt.Errorf("no route for host %q path %q", in.Request.Host, path)), false
}

// clientAuth is RFC 8705 section 2: the client named by client_id must be bound to the
// presented certificate by its registered method.
func (e *Engine) clientAuth(ctx context.Context, cfg *Config, in Input) Decision {
	id, err := clientID(in.Request, cfg.maxFormBytes)
	switch {
	case err != nil:
		return decisionOf(err)
	case id == "":
		return deny(ReasonClientIDMissing, nil)
	}
	d := e.authenticate(ctx, cfg, id, in.Certificate)
	d.ClientID = id
	return d
}

func (e *Engine) authenticate(ctx context.Context, cfg *Config, id string, p *Presented) Decision {
	cl, ok := cfg.Client(id)
	if !ok {
		return deny(ReasonUnknownClient, fmt.Errorf("client_id %q is not registered", id))
	}
	if p == nil {
		return deny(ReasonNoCertificate, nil)
	}
	err := e.bound(ctx, cfg, cl, p, e.now(), nil)
	if errors.Is(err, errNotBound) {
		err = Deny(ReasonCertificateUnbound, unboundCause(cl, p))
	}
	return decisionOf(err)
}

// errNotBound stands for "this certificate is not the client's" in bound, which identity calls
// once per registered client: the explanation is built only when a deny reports it.
var errNotBound = Deny(ReasonCertificateUnbound, errors.New("certificate not bound to the client"))

func unboundCause(cl *Client, p *Presented) error {
	if cl.Method == MethodSelfSigned {
		return fmt.Errorf("certificate %s is not pinned for client %q", p.Thumbprint, cl.ID)
	}
	return fmt.Errorf("certificate subject %s does not carry %s", p.Subject, cl.match)
}

// bound checks one client against a certificate at now: nil when the certificate is the
// client's, else a deny (errNotBound when it is simply not). In client_auth (global nil) the
// chain is verified first, so a bad certificate is reported as such; identity checks names
// first and passes global to verify the chain to the global anchors once for all its clients.
func (e *Engine) bound(ctx context.Context, cfg *Config, cl *Client, p *Presented, now time.Time, global *globalChain) error {
	switch cl.Method {
	case MethodSelfSigned:
		set, err := cl.pinned.Current(ctx)
		if err != nil {
			return Deny(ReasonClientKeysUnavailable, fmt.Errorf("client %q: %w", cl.ID, err))
		}
		pinned, ok := set.Pinned(p.Thumbprint)
		if !ok || !pinned.Equal(p.Leaf) {
			return errNotBound
		}
		return leafValid(p, now)
	case MethodPKI:
		nameChecked := global != nil
		if nameChecked && !cl.match.matches(p) {
			// identity tries every client: verify the chain only for the ones whose name it carries
			return errNotBound
		}
		var res chainResult
		k := chainKey{fail: cl.revocationFailure}
		switch {
		case cl.roots != nil:
			k.roots = cl.ID
			res = cfg.cachedChain(ctx, p, cl.roots, k, now)
		case global != nil && k.fail == cfg.revocationFailure:
			if !global.done {
				global.res, global.done = cfg.cachedChain(ctx, p, cfg.roots, k, now), true
			}
			res = global.res
		default:
			res = cfg.cachedChain(ctx, p, cfg.roots, k, now)
		}
		if res.err != nil {
			return res.err
		}
		if !nameChecked && !cl.match.matches(p) {
			return errNotBound
		}
		return nil
	}
	return Deny(ReasonCertificateUnbound, fmt.Errorf("client %q: unknown method %q", cl.ID, cl.Method))
}

// globalChain is identity's one verification of the chain to the global trust anchors, under
// the global revocation failure policy, shared by every client that uses them.
type globalChain struct {
	res  chainResult
	done bool
}

type chainResult struct {
	err    error // a deny; nil when the chain verified
	chains [][]*x509.Certificate
	// online revocation: the earliest nextUpdate of the answers, and whether an unknown
	// status was let through by the soft policy
	revokedCheckedUntil time.Time
	softFail            bool
}

// chain verifies p against roots (named by k.roots) at now, then asks online revocation about
// the verified chain. A leaf issued by an intermediate already verified to these roots is
// verified under it alone (anchoredpath.go); anything that fails there is verified again in
// full, so every deny comes from the full verification.
func (c *Config) chain(ctx context.Context, p *Presented, roots *x509.CertPool, k chainKey, now time.Time) chainResult {
	if res, ok := c.chainUnderAnchoredPath(ctx, p, k, now); ok {
		return res
	}
	chains, err := c.verifyChain(p, roots, now)
	res := chainResult{err: err, chains: chains}
	if err == nil && len(chains) > 0 {
		res.revokedCheckedUntil, res.softFail, res.err = c.onlineRevocation(ctx, chains[0], k.fail, now)
	}
	if res.err == nil && !res.softFail {
		c.rememberAnchoredPath(p, chains, k, res.revokedCheckedUntil, now)
	}
	return res
}

// identity finds the one registered client the certificate belongs to. The certificate must be
// bound to exactly one client; a certificate that fails validation is denied for that reason
// when it matches no client at all, so operators see why.
func (e *Engine) identity(ctx context.Context, cfg *Config, in Input) Decision {
	p := in.Certificate
	if p == nil {
		return deny(ReasonNoCertificate, nil)
	}
	var global globalChain
	now := e.now()
	var matchedBuf [2]string
	matched := matchedBuf[:0]
	var firstFailure Reason = ReasonNoMatchingClient
	var firstErr, unchecked error
	var candidates [8]int32
	for _, i := range cfg.index.candidates(p, candidates[:0]) {
		cl := cfg.clients[i]
		err := e.bound(ctx, cfg, cl, p, now, &global)
		if err == nil {
			matched = append(matched, cl.ID)
			continue
		}
		switch d := reasonOf(err); d.Reason {
		case ReasonCertificateUnbound:
		case ReasonClientKeysUnavailable:
			if unchecked == nil {
				unchecked = d.Err
			}
			fallthrough
		default:
			if firstErr == nil {
				firstFailure, firstErr = d.Reason, d.Err
			}
		}
	}
	switch len(matched) {
	case 1:
		if unchecked != nil {
			// A client whose certificates could not be read may hold this one too: "exactly one
			// client" cannot be told apart from ambiguous_client, so fail closed.
			return deny(ReasonClientKeysUnavailable, fmt.Errorf("certificate matches client %q, but another could not be checked: %w", matched[0], unchecked))
		}
		return Decision{Reason: ReasonOK, ClientID: matched[0]}
	case 0:
		if firstErr != nil {
			return deny(firstFailure, firstErr)
		}
		return deny(ReasonNoMatchingClient, fmt.Errorf("certificate %s (subject %s) belongs to no registered client", p.Thumbprint, p.Subject))
	}
	return deny(ReasonAmbiguousClient, fmt.Errorf("certificate %s matches clients %s", p.Thumbprint, strings.Join(matched, ", ")))
}

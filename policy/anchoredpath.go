package policy

// Anchored paths: not verifying again an intermediate already verified.
//
// A new leaf under a known intermediate costs one signature check, not one per certificate of
// its chain. When a chain [leaf, I, ..., anchor] verifies in full (crypto/x509 Verify, then
// certbind's directoryName constraints, CRLs and online revocation), the path [I, ..., anchor]
// is remembered, keyed by the SHA-256 of I's exact DER and by the trust anchors it was verified
// to (the global ones or a client's own, and the revocation failure policy). The cache belongs
// to one compiled Config: a reload starts empty. An entry is used until the earliest of: the
// earliest notAfter of the path, the earliest nextUpdate of the configured CRLs and of the
// online revocation answers the verification relied on, and cache.ttl.
//
// A later leaf whose issuer name is I's subject, sent with I's exact DER or issued by a
// configured intermediate with it, is verified by crypto/x509 with I as the only root and no
// other intermediates. Then certbind's directoryName constraints, the CRLs and online
// revocation run on the whole reconstructed chain [leaf, I, ..., anchor], as after a full
// verification. If anything fails on this path, the leaf is verified again in full and the
// full verification decides: the shortcut can allow only what the full path allows, and every
// deny names the reason the full path gives.
//
// Why each check of RFC 5280 section 6.1 still happens for the new leaf (n = the path length):
//
//   - 6.1.1 inputs: the trust anchors are part of the key (global or per client) and the cache
//     is per configuration generation; the user-initial-policy-set is any-policy and the initial
//     explicit-policy, policy-mapping-inhibit and any-policy-inhibit flags are off in both.
//   - 6.1.3 (a)(1) signature: the leaf's, against I's public key, by crypto/x509 now; I's and
//     every certificate's above were checked when the entry was made, over the same DER bytes.
//   - 6.1.3 (a)(2) validity: the leaf's by leafValid and crypto/x509; I's by crypto/x509 (a
//     root's validity is checked too); those above I were valid when the entry was made, and
//     the entry is never used past their earliest notAfter nor before their latest notBefore.
//   - 6.1.3 (a)(3) revocation: the CRLs and online revocation run on the whole reconstructed
//     chain, exactly as after a full verification, and the entry does not outlive the answers
//     it was made with.
//   - 6.1.3 (a)(4) issuer name: the leaf's issuer must be I's subject (crypto/x509); above I,
//     same DER.
//   - 6.1.3 (b), (c) name constraints: I's own DNS, IP, email and URI constraints are applied
//     to the leaf by crypto/x509 (it applies a root's too); directoryName constraints by
//     checkDirectoryNameConstraints on the whole chain. An entry is made only when no
//     certificate above I carries a nameConstraints extension at all, so none is skipped.
//   - 6.1.3 (d)-(f), 6.1.4 (a), (b), (g)-(j), 6.1.5 (a), (b), (g) policies: an entry is made only
//     when no certificate of the path carries policy mappings, requireExplicitPolicy,
//     inhibitPolicyMapping or inhibitAnyPolicy, and the shortcut is taken only for a leaf
//     without requireExplicitPolicy. Then explicit_policy never reaches 0 and no mapping is
//     processed, so policy processing cannot fail on the full chain nor on [leaf, I]: both
//     accept, as crypto/x509 does.
//   - 6.1.4 (k) basicConstraints cA of I and above: checked when the entry was made (I was an
//     intermediate then; crypto/x509 does not ask it of a root); same DER.
//   - 6.1.4 (l), (m) path length: I's pathLenConstraint is checked by crypto/x509 (zero
//     intermediates below it, as before); an entry is made only from a chain in which I issued
//     the leaf, so every certificate above I counts the same intermediates below it as when the
//     entry was made.
//   - 6.1.4 (n) keyUsage keyCertSign of I: crypto/x509 checks it when checking the leaf's
//     signature (CheckSignatureFrom); above I, same DER.
//   - 6.1.4 (o), 6.1.5 (f) critical extensions: crypto/x509 refuses the leaf's and I's unhandled
//     ones; above I, same DER.
//   - 6.1.5 (c)-(e) working public key: the leaf's key is what the certificate binds; nothing is
//     cached of it.
//
// Extended key usage (not part of 6.1, but of crypto/x509's Verify): certbind always asks for
// clientAuth; crypto/x509 intersects the usages from the anchor down, so the certificates above
// I, which allowed clientAuth when the entry was made, still do, and the leaf's and I's are
// checked now.
//
// An entry is made only when the full verification returned exactly one chain, so the CRLs,
// which are applied to every chain verified, are applied to the same chain on both paths.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/certbind/certbind/policy/revocation"
)

// anchoredKey names one remembered path: an intermediate, by the SHA-256 of its DER, verified
// to one set of trust anchors under one revocation failure policy.
type anchoredKey struct {
	intermediate [32]byte
	roots        string
	fail         revocation.FailurePolicy
}

// anchoredPath is a verified path from an intermediate (path[0]) to its trust anchor, and a
// pool holding the intermediate alone, for crypto/x509 to verify leaves under it.
type anchoredPath struct {
	path      []*x509.Certificate
	root      *x509.CertPool
	notBefore time.Time // the latest notBefore of the path
	until     time.Time // see the package comment above
}

// configuredIntermediate is an intermediate of the configuration (intermediates) and the
// SHA-256 of its DER.
type configuredIntermediate struct {
	cert *x509.Certificate
	sum  [32]byte
}

func newAnchoredPaths() *lru.Cache[anchoredKey, *anchoredPath] {
	l, _ := lru.New[anchoredKey, *anchoredPath](anchoredPathsSize)
	return l
}

// anchoredPathsSize is how many intermediates' paths are remembered: a deployment has a few.
const anchoredPathsSize = 256

// chainUnderAnchoredPath verifies p under a remembered path of its issuing intermediate. ok is
// false when there is no usable entry or anything failed: the caller then verifies in full.
func (c *Config) chainUnderAnchoredPath(ctx context.Context, p *Presented, k chainKey, now time.Time) (chainResult, bool) {
	if c.rt.anchoredPaths == nil || p.Leaf.RequireExplicitPolicyZero || p.Leaf.RequireExplicitPolicy > 0 {
		return chainResult{}, false
	}
	ap := c.anchoredPathOf(p, k, now)
	if ap == nil {
		return chainResult{}, false
	}
	if leafValid(p, now) != nil || p.Leaf.IsCA {
		return chainResult{}, false
	}
	verified, err := p.Leaf.Verify(x509.VerifyOptions{
		Roots:       ap.root,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil || len(verified) != 1 || len(verified[0]) != 2 || verified[0][1] != ap.path[0] {
		return chainResult{}, false
	}
	chain := make([]*x509.Certificate, 0, 1+len(ap.path))
	chain = append(append(chain, p.Leaf), ap.path...)
	chains := [][]*x509.Certificate{chain}
	if checkDirectoryNameConstraints(chain) != nil || c.checkRevocation(chains, now) != nil {
		return chainResult{}, false
	}
	res := chainResult{chains: chains}
	res.revokedCheckedUntil, res.softFail, res.err = c.onlineRevocation(ctx, chain, k.fail, now)
	if res.err != nil {
		return chainResult{}, false
	}
	return res, true
}

// anchoredPathOf returns the usable remembered path of the intermediate that issued p's leaf,
// among those the client sent and the configured ones, or nil.
func (c *Config) anchoredPathOf(p *Presented, k chainKey, now time.Time) *anchoredPath {
	key := anchoredKey{roots: k.roots, fail: k.fail}
	lookup := func(sum [32]byte) *anchoredPath {
		key.intermediate = sum
		ap, ok := c.rt.anchoredPaths.Get(key)
		if !ok || !now.Before(ap.until) || now.Before(ap.notBefore) {
			return nil
		}
		return ap
	}
	looked := false
	for i, ic := range p.Intermediates {
		if !bytes.Equal(ic.RawSubject, p.Leaf.RawIssuer) {
			continue
		}
		looked = true
		var sum [32]byte
		if i < len(p.intermediateSums) {
			sum = p.intermediateSums[i]
		} else { // a Presented not made by ParsePresented
			sum = sha256.Sum256(ic.Raw)
		}
		if ap := lookup(sum); ap != nil {
			c.rt.obs.ObserveCache("paths", "hit")
			return ap
		}
	}
	for _, ic := range c.configuredIntermediates {
		if !bytes.Equal(ic.cert.RawSubject, p.Leaf.RawIssuer) {
			continue
		}
		looked = true
		if ap := lookup(ic.sum); ap != nil {
			c.rt.obs.ObserveCache("paths", "hit")
			return ap
		}
	}
	if looked {
		c.rt.obs.ObserveCache("paths", "miss")
	}
	return nil
}

// rememberAnchoredPath keeps the path above the leaf of a fully verified chain, when it is one
// the shortcut may use (see the package comment): one chain, with an intermediate, nothing
// above the intermediate constraining names, no policy processing that could fail.
func (c *Config) rememberAnchoredPath(p *Presented, chains [][]*x509.Certificate, k chainKey, revokedCheckedUntil, now time.Time) {
	if c.rt.anchoredPaths == nil || len(chains) != 1 || len(chains[0]) < 3 {
		return
	}
	path := chains[0][1:]
	for i, cert := range path {
		if i > 0 && extensionValue(cert, oidNameConstraints) != nil {
			return
		}
		if len(cert.PolicyMappings) > 0 || cert.RequireExplicitPolicy > 0 || cert.RequireExplicitPolicyZero ||
			cert.InhibitPolicyMapping > 0 || cert.InhibitPolicyMappingZero || cert.InhibitAnyPolicy > 0 || cert.InhibitAnyPolicyZero {
			return
		}
	}
	ap := &anchoredPath{path: path, root: x509.NewCertPool(), until: now.Add(c.Cache.TTL)}
	ap.root.AddCert(path[0])
	if !revokedCheckedUntil.IsZero() && revokedCheckedUntil.Before(ap.until) {
		ap.until = revokedCheckedUntil
	}
	for _, cert := range path {
		if cert.NotAfter.Before(ap.until) {
			ap.until = cert.NotAfter
		}
		if cert.NotBefore.After(ap.notBefore) {
			ap.notBefore = cert.NotBefore
		}
	}
	for _, l := range c.crls {
		if n := l.List().NextUpdate; n.After(now) && n.Before(ap.until) {
			ap.until = n
		}
	}
	if !now.Before(ap.until) {
		return
	}
	c.rt.anchoredPaths.Add(anchoredKey{intermediate: sha256.Sum256(path[0].Raw), roots: k.roots, fail: k.fail}, ap)
}

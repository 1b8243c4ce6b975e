// Package interop is certbind's interoperability suite (`make interop`): certbind with a real,
// OpenID-certified authorization server (oidc-provider, from npm) and a real OAuth client
// library (openid-client), behind the real nginx with the shipped deploy/nginx configuration
// and behind the Envoy stand-in with the shipped envoy.yaml, all on loopback.
//
// DPoP (RFC 9449): oidc-provider issues DPoP-bound JWT and opaque tokens, and openid-client's
// DPoP handle makes the proofs. Through each proxy, certbind allows the library's request and
// passes the key's RFC 7638 thumbprint upstream (x-certbind-dpop-jkt); it refuses, with the
// exact WWW-Authenticate challenge (invalid_dpop_proof, or invalid_token for how the token is
// presented) and reason, a replayed proof, a proof by another key, for another method, path or
// authority, without ath or for another token, the token sent as Bearer, and no proof.
// Proofs a correct client never sends are openid-client's own made for another request, or
// jose's for the one it never makes (no ath); client.mjs send and batch carry them.
// TestInteropDPoPReplicas runs the two proxies' certbinds as two replicas sharing a
// redis-server (tokens.dpop.replay.store: redis): a proof used at one is refused at the
// other, reached under the first one's authority as through one load balancer; TestInterop
// shows the same replay allowed with each replica's own memory, the documented limit of the
// default store.
//
// node/ holds the Node.js side, pinned by its package-lock.json: as.mjs runs oidc-provider,
// client.mjs runs openid-client. Node is only the test's authorization server and client;
// certbind stays one Go binary. The suite runs when CERTBIND_INTEROP is set (make interop sets
// it after npm ci); without Node.js or the packages it says so in one line and runs nothing,
// and in CI (CI set) it fails instead.
package interop

// Package interop is certbind's interoperability suite (`make interop`): certbind with a real,
// OpenID-certified authorization server (oidc-provider, from npm) and a real OAuth client
// library (openid-client), behind the real nginx with the shipped deploy/nginx configuration
// and behind the Envoy stand-in with the shipped envoy.yaml, all on loopback.
//
// node/ holds the Node.js side, pinned by its package-lock.json: as.mjs runs oidc-provider,
// client.mjs runs openid-client. Node is only the test's authorization server and client;
// certbind stays one Go binary. The suite runs when CERTBIND_INTEROP is set (make interop sets
// it after npm ci); without Node.js or the packages it says so in one line and runs nothing,
// and in CI (CI set) it fails instead.
package interop

// Package nginx runs Debian's nginx with the shipped deploy/nginx configuration in front of
// certbind's HTTP authorization endpoint: nginx terminates mutual TLS, asks certbind about every
// request with auth_request, and at the token endpoint sends the form body to certbind first
// through njs (certbind.js). Start runs it for a test, changed only in addresses and paths;
// the package's tests are the end-to-end tests of that configuration, and the interop suite
// (testenv/interop) puts it in front of a real authorization server. nginx and its njs module
// are Debian packages (nginx-light, libnginx-mod-http-js) that CI installs; outside CI a test
// skips without them.
package nginx

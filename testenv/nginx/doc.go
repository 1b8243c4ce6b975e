// Package nginx holds the end-to-end test with a real third-party proxy: Debian's nginx
// terminates mutual TLS and asks certbind's HTTP authorization endpoint about every request
// with auth_request, using the shipped deploy/nginx configuration. The package has only tests;
// they need the nginx binary (CI installs it) and skip without it outside CI.
package nginx

// Command testbed runs the parts of certbind's test bed and demo that are not proxies: it writes
// the test PKI and serves the demo authorization server and API (package
// testenv/demoapp). The same binary runs in the test bed's containers and locally.
//
//	testbed pki --out testenv/testbed/pki [--valid 24h]
//	testbed as  --pki testenv/testbed/pki [--addr :8080] [--issuer https://as.certbind.test] [--audience https://api.certbind.test]
//	testbed api [--addr :8080]
//
// The servers speak plain HTTP: Envoy terminates TLS in front of them, and certbind decides
// before they see a request. `as` trusts certbind's upstream headers and must not be reachable
// any other way (see package demoapp). Logs are logrus JSON on stderr, one line per request;
// the bound address is logged ("serving", addr), so --addr 127.0.0.1:0 works. SIGINT and
// SIGTERM stop accepting connections and let in-flight requests finish (10s at most).
//
// Exit codes: 0 success, 1 failure, 2 invalid command or flags.
package main

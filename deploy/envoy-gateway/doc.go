// Package envoygateway holds certbind behind Envoy Gateway (this directory, a kustomize overlay
// of deploy/kubernetes): a GatewayClass and Gateway, HTTPRoutes, the ClientTrafficPolicy that
// requires client certificates and forwards them in XFCC, SecurityPolicies that send each route
// to certbind over ext_authz gRPC with its certbind_mode, the EnvoyProxy and BackendTLSPolicy for
// mutual TLS from Envoy to certbind, and the certbind.yaml Envoy Gateway needs.
//
// It has no code. Its test decodes every YAML document strictly into Envoy Gateway's and
// Gateway API's own Go types (github.com/envoyproxy/gateway/api/v1alpha1,
// sigs.k8s.io/gateway-api/apis), validates each against the CRD the API server would use (the
// OpenAPI schema with its enums, patterns and limits, list-map keys, and the x-kubernetes-
// validations CEL rules, after pruning and defaulting, with k8s.io/apiextensions-apiserver), for
// Gateway API kinds against both the standard and the experimental channel, renders the overlay
// (the base's resources and this directory's patches) and checks the wiring: every policy target
// exists, each route gets the certbind mode it needs, the token route sends its body, the
// policies fail closed, the XFCC settings are the ones certbind.yaml expects, and certbind.yaml
// loads with policy.ParseConfig and, driven through certbind's ext_authz server with the
// CheckRequests Envoy Gateway sends (XFCC only, no peer certificate), allows and denies as it
// should.
package envoygateway

// Package kubernetes holds certbind's Kubernetes manifests (this directory, applied with
// kustomize) and the Istio example (istio/). It has no code: its test decodes every YAML document
// in the tree strictly into the Kubernetes and Istio API types, and checks that the manifests fit
// the certbind binary and each other (probes on the admin port, the security context, the
// volumes behind the command-line paths, the Service and the mesh provider, and that the
// ConfigMap's certbind.yaml loads with policy.ParseConfig).
package kubernetes

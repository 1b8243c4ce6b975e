// Package helm holds certbind's Helm chart (certbind/) and has no code: its tests drive Helm's
// own Go library (helm.sh/helm/v3) without a helm binary. They lint the chart, prove that
// values.schema.json rejects misspelt and ill-typed values, render it with the default values and
// with every optional object on, and decode every rendered document strictly into the
// Kubernetes and Prometheus Operator API types. They cross-check the result against certbind
// itself: the command line against `certbind serve`'s flags, probes against the admin listener,
// the ConfigMap's certbind.yaml against policy.ParseConfig with the rendered PKI Secret, the
// resources and security settings against deploy/kubernetes, and every PromQL expression of
// the PrometheusRule and the Grafana dashboard against Prometheus' parser and the metrics that
// extauthz/metrics actually registers.
package helm

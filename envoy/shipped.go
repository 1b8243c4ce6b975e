package envoy

import _ "embed"

// The configurations certbind ships, embedded so the demo and tests run them without a
// checkout.
var (
	//go:embed envoy.yaml
	ShippedFrontProxy []byte
	//go:embed envoy-self-signed.yaml
	ShippedSelfSigned []byte
)

package testbed

import _ "embed"

// Config is the test bed's certbind.yaml, embedded so the demo runs on these defaults from any
// directory. It refers to the PKI files by their Layout names under pki/.
//
//go:embed certbind.yaml
var Config []byte

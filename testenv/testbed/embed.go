package testbed

import (
	_ "embed"
	"strings"
)

// Config is the test bed's certbind.yaml, embedded so the demo runs on these defaults from any
// directory. It refers to the PKI files by their Layout names under pki/.
//
//go:embed certbind.yaml
var Config []byte

// tokensSection starts the last section of certbind.yaml, the demo issuer's tokens.
const tokensSection = "\n# Access tokens"

// ConfigWithoutTokens is Config up to its tokens section: trust anchors, clients and routes,
// for tests that bring their own issuers (a real authorization server, a jwks_uri of theirs).
func ConfigWithoutTokens() string {
	base := string(Config)
	i := strings.Index(base, tokensSection)
	if i < 0 {
		panic("testbed: certbind.yaml has no " + strings.TrimSpace(tokensSection) + " section")
	}
	return base[:i]
}

package testbed

import (
	"strings"
	"testing"
)

// TestConfigWithoutTokens: the clients and routes stay, the tokens section goes.
func TestConfigWithoutTokens(t *testing.T) {
	base := ConfigWithoutTokens()
	if strings.Contains(base, "tokens:") || !strings.Contains(base, "clients:") || !strings.Contains(base, "routes:") {
		t.Fatalf("ConfigWithoutTokens:\n%s", base)
	}
}

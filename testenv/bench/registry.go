package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WriteRegistry writes to name in f.Dir the fixture's configuration with n more clients
// registered, half by URI SAN and half by subject DN (none of them the bench client's), as a
// large deployment's registry would be, and returns its path.
func (f *Fixture) WriteRegistry(name string, n int) (string, error) {
	head, tail, ok := strings.Cut(config, "routes:\n")
	if !ok {
		return "", fmt.Errorf("bench: configuration has no routes")
	}
	var b strings.Builder
	b.Grow(len(config) + n*150)
	b.WriteString(head)
	for i := range n {
		fmt.Fprintf(&b, "  - client_id: registry-%d\n    token_endpoint_auth_method: tls_client_auth\n", i)
		if i%2 == 0 {
			fmt.Fprintf(&b, "    tls_client_auth_san_uri: \"spiffe://bench.test/registry/%d\"\n", i)
		} else {
			fmt.Fprintf(&b, "    tls_client_auth_subject_dn: \"CN=registry-%d,OU=Registry,O=certbind bench\"\n", i)
		}
	}
	b.WriteString("routes:\n")
	b.WriteString(tail)
	p := filepath.Join(f.Dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	return p, nil
}

package policy

import (
	"strings"
	"testing"
)

// TestUpstreamSafe: the last check before an allow refuses every upstream value holding a
// control character, whatever produced it (claims are refused earlier, where they are read, so
// this guard is reached only if a source forgets).
func TestUpstreamSafe(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Decision
		want string // "" when safe
	}{
		{"clean", Decision{ClientID: "billing", Subject: "user-7", Scopes: []string{"read", "write"}}, ""},
		{"client id with CR LF", Decision{ClientID: "billing\r\nx: y"}, "client id"},
		{"subject with NUL", Decision{Subject: "a\x00"}, "subject"},
		{"subject with a C1 control", Decision{Subject: "a\u0085"}, "subject"},
		{"scope with a TAB", Decision{Scopes: []string{"read\tadmin"}}, "scope"},
		{"empty scope", Decision{Scopes: []string{""}}, "scope"},
	} {
		err := upstreamSafe(tc.d)
		if (tc.want == "") != (err == nil) || err != nil && !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

package policy_test

import (
	"testing"

	"github.com/certbind/certbind/policy"
)

// TestParseX5tS256: only the canonical form of RFC 8705 section 3.1 is read; every other
// spelling of the same digest is refused.
func TestParseX5tS256(t *testing.T) {
	tp := policy.ThumbprintOf([]byte("certificate"))
	canonical := tp.String()
	tests := []struct {
		name  string
		claim string
		ok    bool
	}{
		{"canonical", canonical, true},
		{"RFC 8705 C.01 vector", "EUBlMZJZ30HLngBFELp2qsYErSMFyFl-7ugZcEcFKPw", true},
		{"padded", canonical + "=", false},
		{"standard alphabet", "EUBlMZJZ30HLngBFELp2qsYErSMFyFl+7ugZcEcFKPw", false},
		{"hex", tp.Hex(), false},
		{"non-zero unused bits", "EUBlMZJZ30HLngBFELp2qsYErSMFyFl-7ugZcEcFKPx", false},
		{"line break inside", canonical[:20] + "\n" + canonical[21:], false},
		{"one character short", canonical[:42], false},
		{"one character long", canonical + "A", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := policy.ParseX5tS256(tt.claim)
			if ok != tt.ok {
				t.Fatalf("ParseX5tS256(%q) ok = %v, want %v", tt.claim, ok, tt.ok)
			}
			if ok && got.String() != tt.claim {
				t.Errorf("ParseX5tS256(%q) = %s, which does not render back", tt.claim, got)
			}
			if !ok && got != (policy.Thumbprint{}) {
				t.Errorf("ParseX5tS256(%q) = %s with ok false, want the zero Thumbprint", tt.claim, got)
			}
			if want := tt.claim == canonical; tp.MatchesX5tS256(tt.claim) != want {
				t.Errorf("MatchesX5tS256(%q) = %v, want %v", tt.claim, !want, want)
			}
		})
	}
}

package envoysim

import "testing"

// TestValidReferer follows Envoy's Utility::isValidRefererValue cases.
func TestValidReferer(t *testing.T) {
	for v, want := range map[string]bool{
		"https://example.com/page":            true,
		"https://example.com/page?q=1":        true,
		"https://user:pw@example.com/":        false, // userinfo
		"https://example.com/#frag":           false, // fragment
		"/relative/page.html":                 true,
		"page.html?x=a:b":                     false, // Envoy refuses any ":" before the first "/"
		"relative/path:with-colon":            true,  // ':' after the first '/'
		"a:b/c":                               false, // ':' in the first segment
		"/page#frag":                          false,
		"/with space":                         false,
		"/caf\xc3\xa9":                        false,
		"/pct%20encoded;sub=delims!$&'()*+,@": true,
	} {
		if got := validReferer(v); got != want {
			t.Errorf("validReferer(%q) = %v, want %v", v, got, want)
		}
	}
}

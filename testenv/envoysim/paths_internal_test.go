package envoysim

import (
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/certbind/certbind/envoy"
)

func TestCanonicalPath(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "/", true},
		{"/", "/", true},
		{"a/b", "/a/b", true},
		{"/a/b/../c", "/a/c", true},
		{"/a/./b", "/a/b", true},
		{"/..", "/", true},
		{"/../../a", "/a", true},
		{"/a/..", "/", true},
		{"/a/b/..", "/a/", true},
		{"/a/b/.", "/a/b/", true},
		{"/a/b/%2e", "/a/b/", true},
		{"/a/%2E%2e/b", "/b", true},
		{"/a/.%2e/b", "/b", true},
		{"/a/.hidden", "/a/.hidden", true},
		{"/a/..b", "/a/..b", true},
		{"/a/b..", "/a/b..", true},
		{`/a\b\..\c`, "/a/c", true},
		{"/a//b", "/a//b", true}, // merging is merge_slashes' job
		{"/%61%62%2D%5F%7e", "/ab-_~", true},
		{"/x%2Fy%2f", "/x%2Fy%2f", true}, // reserved escapes kept as written
		{"/a%3Bb", "/a%3Bb", true},
		{"/a b\"<>`{}|^", "/a%20b%22%3C%3E%60%7B%7D%7C%5E", true},
		{"/a#b?c", "/a%23b%3Fc", true},
		{"/!$&'()*+,;=:@[]", "/!$&'()*+,;=:@[]", true},
		{"/a%zz", "/a%zz", true},
		{"/a%", "/a%", true},
		{"/%%300", "/%2500", true},
		{"/%%%3030", "/%%25030", true},
		{"/\u00e9", "/%C3%A9", true},
		{"/a\x7f", "/a%7F", true},
		{"/a\tb", "/a%09b", true},
		{"/a%00", "/a%00", false},
		{"/a\x00", "/a%00", false},
		{"/a\xff", "/a%EF%BF%BD", false},
	}
	for _, tc := range tests {
		got, ok := canonicalPath(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("canonicalPath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNormalize(t *testing.T) {
	none := PathOptions{}
	unescapeOnly := PathOptions{EscapedSlashes: hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD}
	reject := PathOptions{EscapedSlashes: hcmv3.HttpConnectionManager_REJECT_REQUEST}
	tests := []struct {
		o      PathOptions
		in     string
		want   string
		action pathAction
	}{
		{ShippedPaths, "/a/../b?x=/../", "/b?x=/../", pathContinue},
		{ShippedPaths, "//a///b//?q=//", "/a/b/?q=//", pathContinue},
		{ShippedPaths, "/a%2fb%5Cc", "/a/b/c", pathRedirect},
		{ShippedPaths, "/a?b=%2F", "/a?b=%2F", pathContinue},
		{ShippedPaths, "/a#frag", "/a#frag", pathReject},
		{ShippedPaths, "/a/%00", "/a/%00", pathReject},
		{none, "/a/../b//c%2F", "/a/../b//c%2F", pathContinue},
		{unescapeOnly, "/a%2Fb", "/a/b", pathContinue},
		{reject, "/a%2Fb", "/a/b", pathReject},
		{reject, "/a%41", "/a%41", pathContinue},
	}
	for _, tc := range tests {
		got, act := tc.o.normalize(tc.in)
		if act != tc.action || (act != pathReject && got != tc.want) {
			t.Errorf("%+v normalize(%q) = %q, %v; want %q, %v", tc.o, tc.in, got, act, tc.want, tc.action)
		}
	}
}

// TestShippedPaths: ShippedPaths is what both shipped configs say.
func TestShippedPaths(t *testing.T) {
	for _, f := range []string{"../../envoy/envoy.yaml", "../../envoy/envoy-self-signed.yaml"} {
		b, err := envoy.LoadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := PathsOf(b)
		if err != nil {
			t.Fatal(err)
		}
		if got != ShippedPaths {
			t.Errorf("%s: %+v, want ShippedPaths %+v", f, got, ShippedPaths)
		}
	}
}

func TestMutateQuery(t *testing.T) {
	got := mutateQuery("/p?z=1&a=2&a=3&keep&drop=x", nil, []string{"drop"})
	if want := "/p?a=2&a=3&keep=&z=1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := mutateQuery("/p?a=1", nil, []string{"a"}); got != "/p" {
		t.Errorf("got %q", got)
	}
}

func TestNewUUID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		u := newUUID()
		if len(u) != 36 || u[14] != '4' || seen[u] {
			t.Fatalf("bad or repeated UUID %q", u)
		}
		seen[u] = true
	}
}

package extauthz

import (
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
)

// TestHeaderNames: the precomputed names give what strings.ToLower and http.Header.Set would,
// for the common names and for any other.
func TestHeaderNames(t *testing.T) {
	names := append(append([]string{"X-Unknown-Header", "x-unknown-header", "X-CERTBIND-CLIENT-ID", "Bad Name", ""}, commonHeaders...), upstreamHeaders...)
	for _, n := range names {
		for _, in := range []string{n, textproto.CanonicalMIMEHeaderKey(n), strings.ToUpper(n)} {
			if got, want := lowerName(in), strings.ToLower(in); got != want {
				t.Errorf("lowerName(%q) = %q, want %q", in, got, want)
			}
			got, want := http.Header{}, http.Header{}
			setHeader(got, in, "v")
			want.Set(in, "v")
			if !reflect.DeepEqual(got, want) {
				t.Errorf("setHeader(%q) = %v, Header.Set gives %v", in, got, want)
			}
		}
	}
}

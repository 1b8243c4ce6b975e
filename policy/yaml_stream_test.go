package policy

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestDecodeStreamedAgrees: whenever decodeStreamed takes a document, it decodes it exactly as
// decodeStrict does; documents of another shape (anchors, a key inside a quoted scalar, flow
// style, an empty entry) fall back to decodeStrict, which names their errors.
func TestDecodeStreamedAgrees(t *testing.T) {
	var big strings.Builder
	big.WriteString("trust_anchors: [ca.pem]\n# the registry\nclients:\n")
	for i := range 2500 { // three groups of listChunk and a partial one
		fmt.Fprintf(&big, "  - client_id: c-%d\n    token_endpoint_auth_method: tls_client_auth\n", i)
		if i%2 == 0 {
			fmt.Fprintf(&big, "    tls_client_auth_san_uri: \"spiffe://x/%d\"\n", i)
		} else {
			fmt.Fprintf(&big, "    # a comment\n    tls_client_auth_subject_dn: >-\n      CN=c-%d,\n      O=x\n    trust_anchors:\n      - a.pem\n      - b.pem\n", i)
		}
	}
	big.WriteString("routes:\n  - { path_prefix: /, mode: identity }\n")
	for _, tc := range []struct {
		name, doc string
		streamed  bool
	}{
		{"large", big.String(), true},
		{"items at column 0", "clients:\n- client_id: a\n  token_endpoint_auth_method: tls_client_auth\n- client_id: b\nroutes: []\n", true},
		{"comments and blank lines", "clients: # the list\n\n  # first\n  - client_id: a\n\n  - client_id: b\n# done\nroutes: []\n", true},
		{"a quoted scalar over lines", "clients:\n  - client_id: \"a\n  - b\"\n  - client_id: c\n", true}, // false in groups of one
		{"anchor", "clients:\n  - &one {client_id: a}\n  - client_id: b\n", false},
		{"key line inside a quoted scalar", "xfcc:\n  elements: \"single\nclients:\n  - client_id: q\n  \"\n", false},
		{"key inside a quoted scalar", "xfcc: {elements: \"single\nclients:\n  - x\"}\n", false},
		{"flow list", "clients: [{client_id: a}]\n", false},
		{"empty entry", "clients:\n  -\n  - client_id: b\n", false},
		{"unknown key", "clients:\n  - client_id: a\n    colour: blue\n", false},
		{"two documents", "clients:\n  - client_id: a\n---\nclients: []\n", false},
		{"list after the key", "clients:\nroutes: []\n", false},
	} {
		for _, per := range []int{1000, 1} {
			t.Run(fmt.Sprintf("%s/groups of %d", tc.name, per), func(t *testing.T) {
				defer func(old int) { listChunk = old }(listChunk)
				listChunk = per
				if per == 1 && tc.name == "a quoted scalar over lines" {
					tc.streamed = false // the group boundary cuts the scalar: it fails to parse
				}
				var streamed fileConfig
				ok := decodeStreamed([]byte(tc.doc), &streamed, "clients", &streamed.Clients)
				if ok != tc.streamed {
					t.Fatalf("decodeStreamed ok = %v, want %v", ok, tc.streamed)
				}
				if ok && tc.name == "large" && cap(streamed.Clients) != 2500 {
					// Sized once from the item lines, not grown 100,000 registrations at a time.
					t.Errorf("items in a list of capacity %d, want 2500", cap(streamed.Clients))
				}
				var strict fileConfig
				nodes, err := decodeStrict([]byte(tc.doc), &strict, "clients")
				if !ok {
					return
				}
				if err != nil {
					t.Fatalf("decodeStreamed took a document decodeStrict refuses: %v", err)
				}
				for _, n := range nodes {
					var fc fileClient
					if err := n.Decode(&fc); err != nil {
						t.Fatal(err)
					}
					strict.Clients = append(strict.Clients, fc)
				}
				strict.clientNodes = nil
				if !reflect.DeepEqual(streamed, strict) {
					t.Errorf("decoded differently:\nstreamed %+v\nstrict   %+v", streamed.Clients[:min(2, len(streamed.Clients))], strict.Clients[:min(2, len(strict.Clients))])
				}
			})
		}
	}
}

package xfcc

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/certbind/certbind/testenv/envoyxfcc"
)

// summary renders the fields of e that are set, for compact table expectations.
func summary(e Element) string {
	var parts []string
	if e.By != nil {
		parts = append(parts, fmt.Sprintf("by=%q", e.By))
	}
	if e.Hash != nil {
		parts = append(parts, "hash="+hex.EncodeToString(e.Hash))
	}
	if e.Cert != nil {
		parts = append(parts, "cert")
	}
	if e.Chain != nil {
		parts = append(parts, fmt.Sprintf("chain=%d", len(e.Chain)))
	}
	if e.HasSubject {
		parts = append(parts, fmt.Sprintf("subject=%q", e.Subject))
	}
	if e.URI != nil {
		parts = append(parts, fmt.Sprintf("uri=%q", e.URI))
	}
	if e.DNS != nil {
		parts = append(parts, fmt.Sprintf("dns=%q", e.DNS))
	}
	return strings.Join(parts, " ")
}

func summaries(elems []Element) []string {
	out := make([]string, len(elems))
	for i, e := range elems {
		out[i] = summary(e)
	}
	return out
}

const (
	lyftHash  = "7346b3836cfc41385351191b5e6163f1a69704cfdf0a03634ed2019128e6fdc4"
	docsHash1 = "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688"
	docsHash2 = "9ba61d6425303443c0748a02dd8de688468ed33be74eee6556d90c0149c1309e"
)

// emittedVectors are the "emitted" headers of xfcc-vectors.md sections A, C.1 (and the C.2
// fuzz corpus), D, H, I.1, J.1 and M; B is in testdata/envoy-integration.txt, F.1 and N.2 in
// testdata/*.xfcc. Mock hashes such as Hash=abcdefg are not SHA-256 hex, so those rows fail
// with ErrBadHash; TestScanMockVectors checks their structure.
var emittedVectors = []struct {
	name    string
	header  string
	want    []string
	wantErr error
}{
	// A: Envoy unit tests (mocked connection).
	{"A.1", `By=test;URI=abc;DNS=example.com`, []string{`by=["test"] uri=["abc"] dns=["example.com"]`}, nil},
	{"A.2", `By=test://foo.com/fe;URI=test://bar.com/be;DNS=example.com`, []string{`by=["test://foo.com/fe"] uri=["test://bar.com/be"] dns=["example.com"]`}, nil},
	{"A.3 out", `By=test://foo.com/be;By=http://backend.foo.com;Hash=abcdefg;URI=test://foo.com/fe;URI=http://frontend.foo.com;Cert="%3D%3Dabc%0Ade%3D";Chain="%3D%3Dabc%0Ade%3D%3D%3Dlmn%0Aop%3D";DNS=www.example.com`, nil, ErrBadHash},
	{"A.4 in", `By=test://foo.com/fe;By=http://frontend.foo.com;URI=test://bar.com/be;DNS=test.com;DNS=test.com`, []string{`by=["test://foo.com/fe" "http://frontend.foo.com"] uri=["test://bar.com/be"] dns=["test.com" "test.com"]`}, nil},
	{"A.4 out", `By=test://foo.com/fe;By=http://frontend.foo.com;URI=test://bar.com/be;DNS=test.com;DNS=test.com,By=test://foo.com/be;By=http://backend.foo.com;Hash=abcdefg;URI=test://foo.com/fe;URI=http://frontend.foo.com;Cert="%3D%3Dabc%0Ade%3D";Chain="%3D%3Dabc%0Ade%3D%3D%3Dlmn%0Aop%3D";DNS=www.example.com`, nil, ErrBadHash},
	{"A.5 in", `By=test://foo.com/fe;Hash=xyz;URI=test://bar.com/be`, nil, ErrBadHash},
	{"A.5 out", `By=test://foo.com/fe;Hash=xyz;URI=test://bar.com/be,Hash=abcdefg;URI=test://foo.com/fe`, nil, ErrBadHash},
	{"A.6 in", `By=test://foo.com/fe;URI=test://bar.com/be`, []string{`by=["test://foo.com/fe"] uri=["test://bar.com/be"]`}, nil},
	{"A.6 out", `By=test://foo.com/be;By=http://backend.foo.com;Hash=abcdefg;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=test.lyft.com";URI=test://foo.com/fe;URI=http://frontend.foo.com;Cert="abcde=";Chain="abcde=lmnop="`, nil, ErrBadHash},
	{"A.7", `By=test://foo.com/be;Hash=abcdefg;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=test.lyft.com";URI=`, nil, ErrBadHash},
	{"A.8", `By=test;URI=abc`, []string{`by=["test"] uri=["abc"]`}, nil},
	{"A.9", `By=test://foo.com/fe;URI=test://bar.com/be`, []string{`by=["test://foo.com/fe"] uri=["test://bar.com/be"]`}, nil},

	// C.1: Envoy's own parser tests (%XFCC_VALUE(uri)%).
	{"C.1 plain", `By=test;URI=abc;DNS=example.com`, []string{`by=["test"] uri=["abc"] dns=["example.com"]`}, nil},
	{"C.1 quoted delimiters", `By=test;URI="a,b,c;\"e;f;g=x";DNS=example.com`, []string{`by=["test"] uri=["a,b,c;\"e;f;g=x"] dns=["example.com"]`}, nil},
	{"C.1 second element", `By=test;DNS=example.com,By=test;URI="a,b,c;\"e;f;g=x";DNS=example.com`, []string{`by=["test"] dns=["example.com"]`, `by=["test"] uri=["a,b,c;\"e;f;g=x"] dns=["example.com"]`}, nil},
	{"C.1 backslash", `By=test;DNS=example.com,By=test;URI="\\";DNS=example.com`, []string{`by=["test"] dns=["example.com"]`, `by=["test"] uri=["\\"] dns=["example.com"]`}, nil},
	{"C.1 backslash quote", `By=test;DNS=example.com,By=test;URI="\\\"";DNS=example.com`, []string{`by=["test"] dns=["example.com"]`, `by=["test"] uri=["\\\""] dns=["example.com"]`}, nil},
	{"C.1 unmatched", `By=test;URI="abc;DNS=example.com`, nil, ErrUnmatchedQuote},
	{"C.1 no key", `By=test;DNS=example.com`, []string{`by=["test"] dns=["example.com"]`}, nil},

	// C.2: Envoy's fuzz corpus.
	{"C.2 quoted", `URI="abc,=,";DNS=example.com`, []string{`uri=["abc,=,"] dns=["example.com"]`}, nil},
	{"C.2 trailing quote", `By=spiffe://lyft.com/frontend;By=http://frontend.lyft.com;Hash=123456;URI=spiffe://lyft.com/testclient"`, nil, ErrBadHash},
	{"C.2 bad hash", `By=spiffe://lyft.com/backend-team;By=http://backend.lyft.com;Hash=xxxyyyzzz`, nil, ErrBadHash},
	{"C.2 quoted By", `By=spiffe://lyft.com/backend-team;By="http://backend.lyft.com";Hash=xxxyyyzzz`, nil, ErrBadHash},
	{"C.2 stray quote", `DNS=lyft.com";DNS=www.lyft.com`, nil, ErrUnmatchedQuote},
	{"C.2 subject", `Subject="emailAddress=frontend-team@lyft.com,CN=Test Frontend Team,OU=Lyft Engineering,O=Lyft,L=San Francisco,ST=California,C=US"`, []string{`subject="emailAddress=frontend-team@lyft.com,CN=Test Frontend Team,OU=Lyft Engineering,O=Lyft,L=San Francisco,ST=California,C=US"`}, nil},
	{"C.2 escaped backslash", `By="a\\";URI="spiffe://good"`, []string{`by=["a\\"] uri=["spiffe://good"]`}, nil},
	{"C.2 escaped both", `By="a\\\"b";URI="spiffe://ns/svc"`, []string{`by=["a\\\"b"] uri=["spiffe://ns/svc"]`}, nil},

	// D: Envoy documentation.
	{"D.1", `By=http://frontend.lyft.com;Hash=` + docsHash1 + `;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com`, []string{`by=["http://frontend.lyft.com"] hash=` + docsHash1 + ` subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client" uri=["http://testclient.lyft.com"]`}, nil},
	{"D.2", `By=http://frontend.lyft.com;Hash=` + docsHash1 + `;URI=http://testclient.lyft.com,By=http://backend.lyft.com;Hash=` + docsHash2 + `;URI=http://frontend.lyft.com`, []string{`by=["http://frontend.lyft.com"] hash=` + docsHash1 + ` uri=["http://testclient.lyft.com"]`, `by=["http://backend.lyft.com"] hash=` + docsHash2 + ` uri=["http://frontend.lyft.com"]`}, nil},
	{"D.3", `By=http://frontend.lyft.com;Hash=` + docsHash1 + `;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com;DNS=lyft.com;DNS=www.lyft.com`, []string{`by=["http://frontend.lyft.com"] hash=` + docsHash1 + ` subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client" uri=["http://testclient.lyft.com"] dns=["lyft.com" "www.lyft.com"]`}, nil},

	// H: Istio.
	{"H.1", `By=spiffe://cluster.local/ns/foo/sa/httpbin;Hash=dd14782fa2f439724d271dbed846ef843ff40d3932b615da650d028db655fc8d;Subject="";URI=spiffe://cluster.local/ns/foo/sa/curl`, []string{`by=["spiffe://cluster.local/ns/foo/sa/httpbin"] hash=dd14782fa2f439724d271dbed846ef843ff40d3932b615da650d028db655fc8d subject="" uri=["spiffe://cluster.local/ns/foo/sa/curl"]`}, nil},
	{"H.2", `By=spiffe://cluster.local/ns/default/sa/default;Hash=61ef4d48689a6ded74839118f612bf8af8639c8a11dbd28c3dd103669e5eeb31;Subject="";URI=spiffe://cluster.local/ns/default/sa/sleep`, []string{`by=["spiffe://cluster.local/ns/default/sa/default"] hash=61ef4d48689a6ded74839118f612bf8af8639c8a11dbd28c3dd103669e5eeb31 subject="" uri=["spiffe://cluster.local/ns/default/sa/sleep"]`}, nil},

	// I.1: alecholmes/xfccparser (mock hash; the Cert is not a certificate either).
	{"I.1", `Hash=hash;Cert="-----BEGIN%20CERTIFICATE-----%0cert%0A-----END%20CERTIFICATE-----%0A";Subject="CN=hello,OU=hello,O=Acme\, Inc.";DNS=hello.west.example.com;DNS=hello.east.example.com,By=spiffe://mesh.example.com/ns/hellons/sa/hellosa;Hash=again;Subject="";URI=spiffe://mesh.example.com/ns/otherns/sa/othersa;URI=spiffe://mesh.example.com/ns/otherns/sa2/othersa2`, nil, ErrBadHash},

	// J.1: Frederick888/xfcc-parser.
	{"J.1 element", `By=http://frontend.lyft.com;Hash=` + docsHash1 + `;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com`, []string{`by=["http://frontend.lyft.com"] hash=` + docsHash1 + ` subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client" uri=["http://testclient.lyft.com"]`}, nil},
	{"J.1 empty By", `By=;By=http://frontend.lyft.com;Hash=` + docsHash1 + `;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com`, []string{`by=["http://frontend.lyft.com"] hash=` + docsHash1 + ` subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client" uri=["http://testclient.lyft.com"]`}, nil},
	{"J.1 two elements", `By=http://frontend.lyft.com;Hash=` + docsHash1 + `;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com,By=http://example.com;By=http://instance.com`, []string{`by=["http://frontend.lyft.com"] hash=` + docsHash1 + ` subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client" uri=["http://testclient.lyft.com"]`, `by=["http://example.com" "http://instance.com"]`}, nil},
	{"J.1 mock hash", `Hash=hash;Cert="-----BEGIN%20CERTIFICATE-----%0cert%0A-----END%20CERTIFICATE-----%0A";Subject="CN=hello,OU=hello,O=Acme\, Inc.";URI=;DNS=hello.west.example.com;DNS=hello.east.example.com,By=spiffe://mesh.example.com/ns/hellons/sa/hellosa;Hash=again;Subject="";URI=spiffe://mesh.example.com/ns/otherns/sa/othersa`, nil, ErrBadHash},
	{"J.1 empty subject", `By=http://example.com;Subject=""`, []string{`by=["http://example.com"] subject=""`}, nil},

	// M: salesforce/grpc-java-contrib (legacy SAN= key).
	{"M legacy SAN", `By=http://frontend.lyft.com;Hash=` + docsHash1 + `;SAN=http://testclient.lyft.com`, nil, ErrUnknownKey},
	{"M no By", `Hash=ebb216c5155a5fd8c8f082a07362b3c7b1a8ee2f98c20f6142b49fe5c2db90bd;DNS=test-tls-in;DNS=second-san;DNS=third-san;Subject="OU=0:test-tls-in,CN=localhost"`, []string{`hash=ebb216c5155a5fd8c8f082a07362b3c7b1a8ee2f98c20f6142b49fe5c2db90bd subject="OU=0:test-tls-in,CN=localhost" dns=["test-tls-in" "second-san" "third-san"]`}, nil},
	{"M full", `By=http://frontend.lyft.com;Hash=` + docsHash1 + `;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com;DNS=lyft.com;DNS=www.lyft.com`, []string{`by=["http://frontend.lyft.com"] hash=` + docsHash1 + ` subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client" uri=["http://testclient.lyft.com"] dns=["lyft.com" "www.lyft.com"]`}, nil},
	{"M two SAN elements", `By=http://frontend.lyft.com;Hash=` + docsHash1 + `;SAN=http://testclient.lyft.com,By=http://backend.lyft.com;Hash=` + docsHash2 + `;SAN=http://frontend.lyft.com`, nil, ErrUnknownKey},
	{"M escaped quotes", `By=http://frontend.lyft.com;Hash=` + docsHash1 + `;Subject="/C=US/ST=CA/L=\"San Francisco\"/OU=Lyft/CN=Test Client";SAN=http://testclient.lyft.com`, nil, ErrUnknownKey},
	{"M mismatched quotes", `By=http://frontend.lyft.com;Hash=` + docsHash1 + `;Subject="/C=US/ST=CA/L=\"San Francisco"/OU=Lyft/CN=Test Client";SAN=http://testclient.lyft.com`, nil, ErrUnmatchedQuote},
	{"M quoted key", `"By"=http://frontend.lyft.com;Hash=` + docsHash1 + `;Subject="/C=US/ST=CA/L=\"San Francisco"/OU=Lyft/CN=Test Client";SAN=http://testclient.lyft.com`, nil, ErrMalformedPair},
	{"M marshaller subject last", `By=http://frontend.lyft.com;Hash=` + docsHash1 + `;URI=http://testclient.lyft.com;DNS=lyft.com;DNS=www.lyft.com;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client"`, []string{`by=["http://frontend.lyft.com"] hash=` + docsHash1 + ` subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client" uri=["http://testclient.lyft.com"] dns=["lyft.com" "www.lyft.com"]`}, nil},
	{"M marshaller quotes", `By=http://frontend.lyft.com;Hash=` + docsHash1 + `;URI=http://testclient.lyft.com;Subject="/C=US/ST=CA/L=\"San Francisco\"/OU=Lyft/CN=Test Client"`, []string{`by=["http://frontend.lyft.com"] hash=` + docsHash1 + ` subject="/C=US/ST=CA/L=\"San Francisco\"/OU=Lyft/CN=Test Client" uri=["http://testclient.lyft.com"]`}, nil},
	{"M KABOOM", `KABOOM!`, nil, ErrMalformedPair},
	{"M two header lines", `By=http://frontend.lyft.com;Hash=` + docsHash1 + `;SAN=http://testclient.lyft.com,By=http://backend.lyft.com;Hash=` + docsHash2 + `;SAN=http://frontend.lyft.com,By=http://middle.lyft.com;Hash=` + docsHash1 + `;SAN=http://testclient.lyft.com`, nil, ErrUnknownKey},
}

// TestParseEmittedVectors: each vector parses to its summary or fails with its sentinel.
func TestParseEmittedVectors(t *testing.T) {
	for _, tt := range emittedVectors {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.header, Limits{})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if s := summaries(got); !reflect.DeepEqual(s, tt.want) {
				t.Errorf("Parse =\n%q\nwant\n%q", s, tt.want)
			}
		})
	}
}

// pairRecorder is a sink that records the grammar only: no key or value checks.
type pairRecorder struct{ elems [][]string }

func (r *pairRecorder) pair(elem, _ int, text string) error {
	if elem == len(r.elems) {
		r.elems = append(r.elems, nil)
	}
	key, value, err := splitPair(text)
	if err != nil {
		return err
	}
	r.elems[elem] = append(r.elems[elem], key+"="+value)
	return nil
}

func (r *pairRecorder) endElement(int) error { return nil }

// TestScanMockVectors checks the structure of the mock vectors that Parse rejects only for
// their fake Hash, through the grammar layer alone.
func TestScanMockVectors(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   [][]string
	}{
		{"A.3", `By=test://foo.com/be;By=http://backend.foo.com;Hash=abcdefg;URI=test://foo.com/fe;URI=http://frontend.foo.com;Cert="%3D%3Dabc%0Ade%3D";Chain="%3D%3Dabc%0Ade%3D%3D%3Dlmn%0Aop%3D";DNS=www.example.com`,
			[][]string{{"By=test://foo.com/be", "By=http://backend.foo.com", "Hash=abcdefg", "URI=test://foo.com/fe", "URI=http://frontend.foo.com", "Cert=%3D%3Dabc%0Ade%3D", "Chain=%3D%3Dabc%0Ade%3D%3D%3Dlmn%0Aop%3D", "DNS=www.example.com"}}},
		{"A.5 out", `By=test://foo.com/fe;Hash=xyz;URI=test://bar.com/be,Hash=abcdefg;URI=test://foo.com/fe`,
			[][]string{{"By=test://foo.com/fe", "Hash=xyz", "URI=test://bar.com/be"}, {"Hash=abcdefg", "URI=test://foo.com/fe"}}},
		{"A.7", `By=test://foo.com/be;Hash=abcdefg;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=test.lyft.com";URI=`,
			[][]string{{"By=test://foo.com/be", "Hash=abcdefg", "Subject=/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=test.lyft.com", "URI="}}},
		{"I.1", `Hash=hash;Cert="-----BEGIN%20CERTIFICATE-----%0cert%0A-----END%20CERTIFICATE-----%0A";Subject="CN=hello,OU=hello,O=Acme\, Inc.";DNS=hello.west.example.com;DNS=hello.east.example.com,By=spiffe://mesh.example.com/ns/hellons/sa/hellosa;Hash=again;Subject="";URI=spiffe://mesh.example.com/ns/otherns/sa/othersa;URI=spiffe://mesh.example.com/ns/otherns/sa2/othersa2`,
			[][]string{
				{"Hash=hash", "Cert=-----BEGIN%20CERTIFICATE-----%0cert%0A-----END%20CERTIFICATE-----%0A", `Subject=CN=hello,OU=hello,O=Acme\, Inc.`, "DNS=hello.west.example.com", "DNS=hello.east.example.com"},
				{"By=spiffe://mesh.example.com/ns/hellons/sa/hellosa", "Hash=again", "Subject=", "URI=spiffe://mesh.example.com/ns/otherns/sa/othersa", "URI=spiffe://mesh.example.com/ns/otherns/sa2/othersa2"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r pairRecorder
			if err := scan(tt.header, DefaultLimits.MaxElements, &r); err != nil {
				t.Fatalf("scan: %v", err)
			}
			if !reflect.DeepEqual(r.elems, tt.want) {
				t.Errorf("scan =\n%q\nwant\n%q", r.elems, tt.want)
			}
		})
	}
}

// TestParseEnvoyIntegration parses every header of the Envoy integration tests (vectors B):
// the element Envoy itself wrote parses; the client's mock element (Hash=123456) does not.
func TestParseEnvoyIntegration(t *testing.T) {
	for _, c := range integrationCases(t) {
		for _, h := range []struct {
			name    string
			value   string
			present bool
		}{{"in", c.In, c.InPresent}, {"out", c.Out, c.OutPresent}} {
			if !h.present {
				continue
			}
			t.Run(c.Name+"/"+h.name, func(t *testing.T) {
				got, err := Parse(h.value, Limits{})
				if strings.Contains(h.value, "Hash=123456") {
					if !errors.Is(err, ErrBadHash) {
						t.Fatalf("Parse error = %v, want ErrBadHash", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if len(got) != 1 {
					t.Fatalf("Parse returned %d elements, want 1", len(got))
				}
				e := got[0]
				want := Element{
					By:   []string{"spiffe://lyft.com/backend-team", "http://backend.lyft.com"},
					Hash: mustHex(t, lyftHash),
				}
				if c.Details.Subject {
					want.Subject, want.HasSubject = "emailAddress=frontend-team@lyft.com,CN=Test Frontend Team,OU=Lyft Engineering,O=Lyft,L=San Francisco,ST=California,C=US", true
				}
				if c.Details.URI {
					want.URI = []string{"spiffe://lyft.com/frontend-team", "http://frontend.lyft.com"}
				}
				if c.Details.DNS {
					want.DNS = []string{"lyft.com", "www.lyft.com"}
				}
				if !reflect.DeepEqual(e, want) {
					t.Errorf("Parse =\n%s\nwant\n%s", summary(e), summary(want))
				}
			})
		}
	}
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestParseRealCertificates uses the vectors that carry real certificates: DERIVED N.2 and
// Keycloak's genuine Envoy output (F.1).
func TestParseRealCertificates(t *testing.T) {
	client := loadCert(t, "clientcert.pem")

	t.Run("N.2 every detail", func(t *testing.T) {
		got, err := Parse(readFile(t, "n2-all-details.xfcc"), Limits{})
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		sum := sha256.Sum256(client.Raw)
		want := []Element{{
			By:         []string{"spiffe://lyft.com/backend-team", "http://backend.lyft.com"},
			Hash:       sum[:],
			Cert:       client.Raw,
			Chain:      [][]byte{client.Raw},
			Subject:    "emailAddress=frontend-team@lyft.com,CN=Test Frontend Team,OU=Lyft Engineering,O=Lyft,L=San Francisco,ST=California,C=US",
			HasSubject: true,
			URI:        []string{"spiffe://lyft.com/frontend-team", "http://frontend.lyft.com"},
			DNS:        []string{"lyft.com", "www.lyft.com"},
		}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Parse =\n%q\nwant\n%q", summaries(got), summaries(want))
		}
		if hex.EncodeToString(sum[:]) != lyftHash {
			t.Errorf("sha256(clientcert.pem) = %x, want %s", sum, lyftHash)
		}
	})

	const keycloakHash = "a3d0d47ddd0db8c93ea787ef2fb025ddb64f24e6a808a55e73349486e0a890be"
	for _, tt := range []struct {
		file      string
		wantCNs   []string // leaf first: Cert, then Chain
		wantCert  bool
		wantChain int
	}{
		{"keycloak-cert.xfcc", []string{"x509client"}, true, 0},
		{"keycloak-chain.xfcc", []string{"x509client", "client-sub-ca"}, false, 2},
		{"keycloak-cert-and-chain.xfcc", []string{"x509client", "client-sub-ca"}, true, 2},
	} {
		t.Run("F.1 "+tt.file, func(t *testing.T) {
			got, err := Parse(readFile(t, tt.file), Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			e, err := Select(got, PolicySingle)
			if err != nil {
				t.Fatalf("Select: %v", err)
			}
			if hex.EncodeToString(e.Hash) != keycloakHash {
				t.Errorf("Hash = %x", e.Hash)
			}
			if (e.Cert != nil) != tt.wantCert || len(e.Chain) != tt.wantChain {
				t.Errorf("got %s, want cert=%v chain=%d", summary(e), tt.wantCert, tt.wantChain)
			}
			ders := e.Chain
			if ders == nil {
				ders = [][]byte{e.Cert}
			}
			var cns []string
			for _, der := range ders {
				c, err := x509.ParseCertificate(der)
				if err != nil {
					t.Fatalf("decoded DER does not parse: %v", err)
				}
				cns = append(cns, c.Subject.CommonName)
			}
			if !reflect.DeepEqual(cns, tt.wantCNs) {
				t.Errorf("CNs = %q, want %q", cns, tt.wantCNs)
			}
			leaf, err := e.Leaf()
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(leaf); hex.EncodeToString(sum[:]) != keycloakHash {
				t.Errorf("sha256(leaf) = %x", sum)
			}
		})
	}
}

// TestParseGrammar pins the lexical rules shared with Envoy's parser.
func TestParseGrammar(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   []string
	}{
		{"keys are case-insensitive", `bY=a;uri=b;dNs=c;SUBJECT="d";hash=` + strings.ToUpper(docsHash1), []string{`by=["a"] hash=` + docsHash1 + ` subject="d" uri=["b"] dns=["c"]`}},
		{"whitespace around keys and values", " By = a ;\tURI =  \"b c\" ;DNS=d \t", []string{`by=["a"] uri=["b c"] dns=["d"]`}},
		{"whitespace around elements", "By=a , By=b", []string{`by=["a"]`, `by=["b"]`}},
		{"quoted separators", `Subject="a,b;c=d";URI=e`, []string{`subject="a,b;c=d" uri=["e"]`}},
		{"only \\\" and \\\\ are unescaped", `Subject="a\,b\"c\\d\x"`, []string{`subject="a\\,b\"c\\d\\x"`}},
		{"unquoted values stay raw", `URI=a\\b\"c`, []string{`uri=["a\\\\b\\\"c"]`}},
		{"escaped quote outside quotes does not open", `URI=a\";DNS=b`, []string{`uri=["a\\\""] dns=["b"]`}},
		{"empty values", `By=;URI=;DNS=;Subject=""`, []string{`subject=""`}},
		{"empty unquoted subject", `Subject=`, []string{`subject=""`}},
		{"repeated By URI DNS", `By=a;By=a;URI=b;URI=b;DNS=c;DNS=c`, []string{`by=["a" "a"] uri=["b" "b"] dns=["c" "c"]`}},
		{"equals in value", `URI=spiffe://x/a=b`, []string{`uri=["spiffe://x/a=b"]`}},
		{"long backslash run", `Subject="` + strings.Repeat(`\\`, 1000) + `"`, []string{fmt.Sprintf("subject=%q", strings.Repeat(`\`, 1000))}},
		{"many escaped quotes", `Subject="` + strings.Repeat(`\"`, 20000) + `"`, []string{fmt.Sprintf("subject=%q", strings.Repeat(`"`, 20000))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.header, Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if s := summaries(got); !reflect.DeepEqual(s, tt.want) {
				t.Errorf("Parse =\n%q\nwant\n%q", s, tt.want)
			}
		})
	}
}

// TestParseHostile: every row must fail with its sentinel.
func TestParseHostile(t *testing.T) {
	client := loadCert(t, "clientcert.pem")
	server := loadCert(t, "servercert.pem")
	ca := loadCert(t, "cacert.pem")
	clientHash := hex.EncodeToString(sha256Of(client.Raw))
	cert := `Cert="` + certValue(client) + `"`
	certPEM := pemOf(client.Raw)

	chainOf := func(n int) string {
		var sb strings.Builder
		for range n {
			sb.WriteString(certValue(client))
		}
		return `Chain="` + sb.String() + `"`
	}
	manyElements := strings.Repeat("By=a,", 10000) + "By=a"

	tests := []struct {
		name    string
		header  string
		lim     Limits
		wantErr error
	}{
		{"empty", "", Limits{}, ErrEmpty},
		{"whitespace", " \t\r\n ", Limits{}, ErrEmpty},
		{"1 MB", "By=" + strings.Repeat("a", 1<<20), Limits{}, ErrTooLarge},
		{"1 MB of quotes", strings.Repeat(`"`, 1<<20), Limits{}, ErrTooLarge},
		{"over a custom size", "By=abcdef", Limits{MaxHeaderBytes: 8}, ErrTooLarge},
		{"10,000 elements", manyElements, Limits{MaxHeaderBytes: 1 << 20}, ErrTooManyElements},
		{"17 elements", strings.Repeat("By=a,", 16) + "By=a", Limits{}, ErrTooManyElements},
		{"3 elements over a custom limit", "By=a,By=b,By=c", Limits{MaxElements: 2}, ErrTooManyElements},

		{"unmatched quote", `By=a;Subject="abc`, Limits{}, ErrUnmatchedQuote},
		{"escaped closing quote", `Subject="abc\"`, Limits{}, ErrUnmatchedQuote},
		{"quote after odd backslashes", `Subject="a\\\"`, Limits{}, ErrUnmatchedQuote},
		{"quote opened in a later element", `By=a,URI="b`, Limits{}, ErrUnmatchedQuote},
		{"backslash run then quote", strings.Repeat(`\`, 60001) + `"`, Limits{}, ErrMalformedPair},
		{"backslash run, even, then quote", `URI=` + strings.Repeat(`\`, 60000) + `"`, Limits{}, ErrUnmatchedQuote},

		{"no equals", `By=a;garbage`, Limits{}, ErrMalformedPair},
		{"unescaped URI SAN with ';' (envoy#32945)", `By=urn:abc:servicePrincipal(grpc-sample-service;None;i001)`, Limits{}, ErrMalformedPair},
		{"empty pair", `By=a;;URI=b`, Limits{}, ErrMalformedPair},
		{"trailing semicolon", `By=a;`, Limits{}, ErrMalformedPair},
		{"empty element", `By=a,,By=b`, Limits{}, ErrMalformedPair},
		{"lone comma", `,`, Limits{}, ErrMalformedPair},
		{"empty key", `=a`, Limits{}, ErrMalformedPair},
		{"quoted key", `"URI"=a`, Limits{}, ErrMalformedPair},
		{"data after closing quote", `Subject="a"b`, Limits{}, ErrMalformedPair},
		{"second quoted part", `Subject="a" "b"`, Limits{}, ErrMalformedPair},
		{"quote inside unquoted value", `URI=a"b;c"d`, Limits{}, ErrMalformedPair},
		{"Keycloak no quotes end", `Hash=` + clientHash + `;Cert=no start quote"`, Limits{}, ErrUnmatchedQuote},

		{"unknown key", `By=http://example.com;Foo=bar`, Limits{}, ErrUnknownKey},
		{"legacy SAN key", `SAN=spiffe://x`, Limits{}, ErrUnknownKey},
		{"key with inner space", `U RI=x`, Limits{}, ErrUnknownKey},

		{"duplicate Hash", `By=http://example.com;Hash=` + docsHash1 + `;Hash=` + docsHash2, Limits{}, ErrDuplicateKey},
		{"duplicate Hash, other case", `Hash=` + docsHash1 + `;hash=` + docsHash1, Limits{}, ErrDuplicateKey},
		{"duplicate Cert", cert + ";" + cert, Limits{}, ErrDuplicateKey},
		{"duplicate Chain", chainOf(1) + ";" + chainOf(1), Limits{}, ErrDuplicateKey},
		{"duplicate Subject", `Subject="a";Subject="b"`, Limits{}, ErrDuplicateKey},
		{"Cert injected via URI SAN", `Hash=` + clientHash + `;` + cert + `;URI=spiffe://x;` + `Cert="` + certValue(server) + `"`, Limits{}, ErrDuplicateKey},

		{"short hash", `Hash=` + docsHash1[:63], Limits{}, ErrBadHash},
		{"long hash", `Hash=` + docsHash1 + `0`, Limits{}, ErrBadHash},
		{"non-hex hash", `Hash=` + strings.Repeat("g", 64), Limits{}, ErrBadHash},
		{"empty hash", `Hash=`, Limits{}, ErrBadHash},
		{"base64url hash", `Hash=EUBlMZJZ30HLngBFELp2qsYErSMFyFl-7ugZcEcFKPw`, Limits{}, ErrBadHash},

		{"Hash of another certificate", `Hash=` + hex.EncodeToString(sha256Of(server.Raw)) + `;` + cert, Limits{}, ErrHashMismatch},
		{"Hash of another certificate, chain only", `Hash=` + hex.EncodeToString(sha256Of(server.Raw)) + `;` + chainOf(1), Limits{}, ErrHashMismatch},
		{"Hash of the issuer", `Hash=` + hex.EncodeToString(sha256Of(ca.Raw)) + `;Chain="` + certValue(client) + certValue(ca) + `"`, Limits{}, ErrHashMismatch},
		{"Cert is not Chain[0]", cert + `;Chain="` + certValue(server) + certValue(client) + `"`, Limits{}, ErrChainMismatch},
		{"Chain longer than the default limit", chainOf(11), Limits{}, ErrChainTooLong},
		{"Chain longer than a custom limit", chainOf(3), Limits{MaxChainCerts: 2}, ErrChainTooLong},

		{"Cert with two PEM blocks", `Cert="` + certValue(client) + certValue(ca) + `"`, Limits{}, ErrBadPEM},
		{"empty Cert", `Cert=""`, Limits{}, ErrBadPEM},
		{"empty Chain", `Chain=`, Limits{}, ErrBadPEM},
		{"Keycloak foobar", `Cert="foobar"`, Limits{}, ErrBadPEM},
		{"Keycloak chain foobar", `Hash=1234;Chain="foobar"`, Limits{}, ErrBadHash},
		{"whitespace only", `Cert="%20%0A"`, Limits{}, ErrBadPEM},
		{"trailing garbage", `Cert="` + envoyxfcc.EncodePEM([]byte(certPEM+"garbage")) + `"`, Limits{}, ErrBadPEM},
		{"garbage right after END", `Cert="` + envoyxfcc.EncodePEM([]byte(strings.TrimSuffix(certPEM, "\n")+"x\n")) + `"`, Limits{}, ErrBadPEM},
		{"leading garbage", `Cert="` + envoyxfcc.EncodePEM([]byte("garbage\n"+certPEM)) + `"`, Limits{}, ErrBadPEM},
		{"private key block", `Cert="` + envoyxfcc.EncodePEM([]byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIE9zzQeXtuVL3MZ8Zf1S6tMNxWyDOpsBs6qhS2GzDe7L\n-----END PRIVATE KEY-----\n")) + `"`, Limits{}, ErrBadPEM},
		{"private key after the certificate", `Chain="` + envoyxfcc.EncodePEM([]byte(certPEM+"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")) + `"`, Limits{}, ErrBadPEM},
		{"PEM headers", `Cert="` + envoyxfcc.EncodePEM([]byte(strings.Replace(certPEM, "-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1))) + `"`, Limits{}, ErrBadPEM},
		{"invalid base64", `Cert="` + envoyxfcc.EncodePEM([]byte(strings.Replace(certPEM, "MIIE", "MI!E", 1))) + `"`, Limits{}, ErrBadPEM},
		{"truncated base64", `Cert="` + envoyxfcc.EncodePEM([]byte(strings.Replace(certPEM, "cww==", "cww", 1))) + `"`, Limits{}, ErrBadPEM},
		{"missing END", `Cert="` + envoyxfcc.EncodePEM([]byte(strings.Replace(certPEM, "-----END CERTIFICATE-----", "", 1))) + `"`, Limits{}, ErrBadPEM},
		{"empty block", `Cert="` + envoyxfcc.EncodePEM([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")) + `"`, Limits{}, ErrBadPEM},
		{"bad percent-encoding", `Cert="%zz` + certValue(client) + `"`, Limits{}, ErrBadPEM},
		{"truncated percent-encoding", `Cert="` + certValue(client) + `%0"`, Limits{}, ErrBadPEM},
		{"form encoding (Java URLEncoder)", `Cert="` + strings.ReplaceAll(certValue(client), "%20", "+") + `"`, Limits{}, ErrBadPEM},
		{"X509 CERTIFICATE label", `Cert="` + envoyxfcc.EncodePEM([]byte(strings.ReplaceAll(certPEM, "CERTIFICATE", "X509 CERTIFICATE"))) + `"`, Limits{}, ErrBadPEM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.header, tt.lim)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
			}
			if got != nil {
				t.Errorf("Parse returned %d elements with an error", len(got))
			}
		})
	}
}

func sha256Of(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// TestParsePEMEncodings: decoding is url.PathUnescape, so a raw '+' (as AWS ALB and others
// send instead of %2B) is kept, and PEM framing variants other proxies produce still work.
func TestParsePEMEncodings(t *testing.T) {
	client := loadCert(t, "clientcert.pem")
	hash := `Hash=` + hex.EncodeToString(sha256Of(client.Raw)) + `;`
	envoy := certValue(client)
	if !strings.Contains(envoy, "%2B") {
		t.Fatal("test certificate has no '+' in its base64")
	}
	tests := []struct {
		name  string
		value string
	}{
		{"Envoy", envoy},
		{"raw plus", strings.ReplaceAll(envoy, "%2B", "+")},
		{"raw slash and equals", strings.NewReplacer("%2F", "/", "%3D", "=").Replace(envoy)},
		{"lower-case escapes", strings.ReplaceAll(envoy, "%2F", "%2f")},
		{"url.PathEscape", escapePEM(pemOf(client.Raw))},
		{"CRLF", strings.ReplaceAll(envoy, "%0A", "%0D%0A")},
		{"no trailing newline", strings.TrimSuffix(envoy, "%0A")},
		{"surrounding whitespace", "%20%0A" + envoy + "%0A%20"},
		{"indented lines", strings.ReplaceAll(envoy, "%0A", "%0A%20%09")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(hash+`Cert="`+tt.value+`"`, Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !bytes.Equal(got[0].Cert, client.Raw) {
				t.Error("Cert is not the certificate's DER")
			}
		})
	}
}

func TestParseErrorMessages(t *testing.T) {
	tests := []struct {
		header string
		want   string
	}{
		{`By=a,By=b;URI=c;Subject="x`, "xfcc: element 2: pair 3: unmatched quote"},
		{`By=a;Hash=abc`, "xfcc: element 1: pair 2 (Hash): bad hash: 3 characters, want 64"},
		{`By=a;Foo=b`, `xfcc: element 1: pair 2: unknown key "Foo"`},
		{`Subject="a";subject="b"`, "xfcc: element 1: pair 2 (Subject): duplicate key"},
		{`By=a;b`, "xfcc: element 1: pair 2: malformed pair: missing '='"},
		{strings.Repeat("By=a,", 16) + "By=a", "xfcc: more than 16 elements: too many elements"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.header, Limits{})
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%.40q) error = %v, want %q", tt.header, err, tt.want)
		}
	}
}

func TestLimitsDefaults(t *testing.T) {
	got := Limits{MaxElements: 3}.withDefaults()
	want := Limits{MaxHeaderBytes: DefaultLimits.MaxHeaderBytes, MaxElements: 3, MaxChainCerts: DefaultLimits.MaxChainCerts}
	if got != want {
		t.Errorf("withDefaults = %+v, want %+v", got, want)
	}
	if (Limits{}).withDefaults() != DefaultLimits {
		t.Error("zero Limits is not DefaultLimits")
	}
	if (Limits{-1, -1, -1}).withDefaults() != DefaultLimits {
		t.Error("negative Limits are not DefaultLimits")
	}
	// Exactly at the limits is accepted.
	if _, err := Parse(strings.Repeat("By=a,", 15)+"By=a", Limits{}); err != nil {
		t.Errorf("16 elements: %v", err)
	}
	client := loadCert(t, "clientcert.pem")
	chain := `Chain="` + strings.Repeat(certValue(client), 10) + `"`
	if _, err := Parse(chain, Limits{}); err != nil {
		t.Errorf("10 certificates: %v", err)
	}
	if _, err := Parse(chain, Limits{MaxHeaderBytes: len(chain)}); err != nil {
		t.Errorf("header of exactly MaxHeaderBytes: %v", err)
	}
}

func BenchmarkParse(b *testing.B) {
	header := readFile(b, "n2-all-details.xfcc")
	b.ReportAllocs()
	b.SetBytes(int64(len(header)))
	for b.Loop() {
		if _, err := Parse(header, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseNoCert(b *testing.B) {
	header := `By=spiffe://lyft.com/backend-team;By=http://backend.lyft.com;Hash=` + lyftHash + `;Subject="emailAddress=frontend-team@lyft.com,CN=Test Frontend Team,OU=Lyft Engineering,O=Lyft,L=San Francisco,ST=California,C=US";URI=spiffe://lyft.com/frontend-team;URI=http://frontend.lyft.com;DNS=lyft.com;DNS=www.lyft.com`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(header, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPathUnescape: the Cert/Chain decoder is url.PathUnescape, byte for byte.
func TestPathUnescape(t *testing.T) {
	inputs := []string{"", "a+b", "%2B", "%2b", "%", "%2", "%zz", "%%41", "a%20b%0A", "%e2%9c%93", "+%2F+", "%0"}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "%+ 0129aAfFgG/=\n"
	for range 2000 {
		b := make([]byte, r.IntN(8))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		want, wantErr := url.PathUnescape(in)
		got, ok := pathUnescape([]byte("x"), in) // appends to what dst holds
		if ok != (wantErr == nil) || (ok && string(got) != "x"+want) {
			t.Errorf("pathUnescape(x, %q) = %q, %v; url.PathUnescape = %q, %v", in, got, ok, want, wantErr)
		}
	}
}

// TestChainAfterCert: a Chain that starts with the Cert value is decoded from where the Cert
// value ends (Envoy's order). The result, or the error, must be what decoding the Chain whole
// gives, which is what Parse does when Chain comes before Cert.
func TestChainAfterCert(t *testing.T) {
	ca := newCert(t, certOpts{cn: "ca", ca: true}, nil)
	inter := newCert(t, certOpts{cn: "inter", ca: true}, ca)
	leaf := newCert(t, certOpts{cn: "leaf"}, inter)
	pemOf := func(cs ...*x509.Certificate) string {
		var b strings.Builder
		for _, c := range cs {
			b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
		}
		return b.String()
	}
	cert := envoyxfcc.EncodePEM([]byte(pemOf(leaf)))
	if !strings.HasSuffix(cert, "%0A") {
		t.Fatalf("Envoy's encoding ends a PEM with %%0A: %q", cert[len(cert)-6:])
	}
	chain := envoyxfcc.EncodePEM([]byte(pemOf(leaf, inter, ca)))
	noBreak := strings.TrimSuffix(cert, "%0A")
	tests := []struct {
		name       string
		cert       string
		chain      string
		wantErr    error // nil: both orders give the same element
		wantLength int
	}{
		{"Envoy's chain", cert, chain, nil, 3},
		{"chain of the leaf alone", cert, cert, nil, 1},
		{"chain with trailing whitespace", cert, chain + "%20%0A", nil, 3},
		{"Cert without the final line break", noBreak, chain, nil, 3},
		{"Cert without the final line break, chain glued on", noBreak, noBreak + strings.TrimPrefix(chain, cert), ErrBadPEM, 0},
		{"data after the leaf", cert, cert + "junk", ErrBadPEM, 0},
		{"bad escape after the leaf", cert, cert + "%zz", ErrBadPEM, 0},
		{"a private key after the leaf", cert, cert + "-----BEGIN%20PRIVATE%20KEY-----%0AAAAA%0A-----END%20PRIVATE%20KEY-----%0A", ErrBadPEM, 0},
		{"too many certificates", cert, chain + strings.TrimPrefix(chain, cert), ErrChainTooLong, 0},
		{"another leaf", envoyxfcc.EncodePEM([]byte(pemOf(inter))), chain, ErrChainMismatch, 0},
	}
	lim := Limits{MaxChainCerts: 4}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certFirst, err1 := Parse(`Cert="`+tt.cert+`";Chain="`+tt.chain+`"`, lim)
			chainFirst, err2 := Parse(`Chain="`+tt.chain+`";Cert="`+tt.cert+`"`, lim)
			if tt.wantErr != nil {
				if !errors.Is(err1, tt.wantErr) || !errors.Is(err2, tt.wantErr) {
					t.Fatalf("Cert first: %v; Chain first: %v; want %v", err1, err2, tt.wantErr)
				}
				if got, want := strings.Replace(err1.Error(), "pair 2 (Chain)", "pair 1 (Chain)", 1), err2.Error(); got != want {
					t.Errorf("Cert first: %s\nChain first: %s", err1, err2)
				}
				return
			}
			if err1 != nil || err2 != nil {
				t.Fatalf("Cert first: %v; Chain first: %v", err1, err2)
			}
			if !reflect.DeepEqual(certFirst, chainFirst) {
				t.Fatalf("Cert first %s, Chain first %s", summaries(certFirst), summaries(chainFirst))
			}
			if e := certFirst[0]; len(e.Chain) != tt.wantLength || !bytes.Equal(e.Chain[0], leaf.Raw) || !bytes.Equal(e.Cert, leaf.Raw) {
				t.Errorf("chain of %d, want %d with the leaf first", len(e.Chain), tt.wantLength)
			}
		})
	}
}

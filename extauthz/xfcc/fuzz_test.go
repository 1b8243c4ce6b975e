package xfcc

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/certbind/certbind/testenv/envoyxfcc"
)

var sentinels = []error{
	ErrTooLarge, ErrTooManyElements, ErrEmpty, ErrUnmatchedQuote, ErrMalformedPair,
	ErrUnknownKey, ErrDuplicateKey, ErrBadHash, ErrBadPEM, ErrHashMismatch, ErrChainMismatch,
	ErrChainTooLong, ErrNoCertificate,
}

// seedHeaders are every real header of the vectors.
func seedHeaders(tb testing.TB) []string {
	seeds := []string{
		readFile(tb, "n2-all-details.xfcc"),
		readFile(tb, "keycloak-cert.xfcc"),
		readFile(tb, "keycloak-chain.xfcc"),
		readFile(tb, "keycloak-cert-and-chain.xfcc"),
		`By=",;=\""`, `,`, `foobar`, `Hash=1234;Cert="no end quote`, `Hash=1234;Cert=no start quote"`,
	}
	for _, v := range emittedVectors {
		seeds = append(seeds, v.header)
	}
	for _, c := range integrationCases(tb) {
		seeds = append(seeds, c.In, c.Out)
	}
	return seeds
}

// fuzzPool is a fixed set of certificates the round-trip check picks from: hostile subjects,
// benign SANs (a SAN with ';', ',' or '"' is an injection by design, see TestSANInjection).
type fuzzPool struct {
	proxies []*x509.Certificate
	chains  [][]*x509.Certificate
}

var (
	poolOnce sync.Once
	pool     fuzzPool
)

func getPool(tb testing.TB) fuzzPool {
	poolOnce.Do(func() {
		ca := newCert(tb, certOpts{cn: "ca", ca: true}, nil)
		leaves := []*x509.Certificate{
			newCert(tb, certOpts{cn: `a"b\c,d;e+f<g>h=i`, uris: []string{"spiffe://mesh/a"}, dns: []string{"a.example"}}, ca),
			newCert(tb, certOpts{cn: "#lead and trail ", uris: []string{"spiffe://mesh/b", "http://b"}}, ca),
			newCert(tb, certOpts{cn: `\`, dns: []string{"c.example", "d.example"}}, ca),
			newCert(tb, certOpts{rawSubject: hostileSubject(tb)}, ca),
			newCert(tb, certOpts{}, ca),
		}
		pool.proxies = []*x509.Certificate{nil, newCert(tb, certOpts{cn: "proxy", uris: []string{"spiffe://mesh/proxy", "http://proxy"}}, nil)}
		for _, l := range leaves {
			pool.chains = append(pool.chains, []*x509.Certificate{l}, []*x509.Certificate{l, ca})
		}
	})
	return pool
}

// hostileSubject is a name with a UTF8String CN (CN=Lučić) and a multi-valued RDN of an
// organizationIdentifier (unknown to BoringSSL, so dumped as hex) and a BMPString CN holding
// 'é' and '"'.
func hostileSubject(tb testing.TB) []byte {
	tb.Helper()
	return mustHex(tb, "302b3110300e06035504030c074c75c48d69c4873117300806035504610c0178300b06035504031e0400e90022")
}

// FuzzParse checks Parse's invariants on any header, and that Parse reads back what Build and
// Mutate write after any client header (pick chooses certificates, details and mode).
func FuzzParse(f *testing.F) {
	for i, s := range seedHeaders(f) {
		f.Add(s, uint16(i))
	}
	p := getPool(f)
	f.Fuzz(func(t *testing.T, header string, pick uint16) {
		elems, err := Parse(header, Limits{})
		checkParse(t, elems, err)

		proxy := p.proxies[int(pick)%len(p.proxies)]
		chain := p.chains[int(pick>>1)%len(p.chains)]
		bits := pick >> 5
		d := envoyxfcc.Details{Subject: bits&1 != 0, Cert: bits&2 != 0, Chain: bits&4 != 0, URI: bits&8 != 0, DNS: bits&16 != 0}
		mode := envoyxfcc.SanitizeSet
		if bits&32 != 0 {
			mode = envoyxfcc.AppendForward
		}
		out, _ := envoyxfcc.Mutate(header, true, true, mode, envoyxfcc.Build(proxy, chain, d))
		if mode == envoyxfcc.AppendForward && (err != nil || len(elems) >= DefaultLimits.MaxElements || len(out) > DefaultLimits.MaxHeaderBytes) {
			return // the client's part decides; nothing to round-trip
		}
		got, err := Parse(out, Limits{})
		if err != nil {
			t.Fatalf("Parse(Mutate(...)) = %v\nheader %q", err, out)
		}
		if mode == envoyxfcc.AppendForward && !reflect.DeepEqual(got[:len(got)-1], elems) {
			t.Fatalf("appending changed the client's elements")
		}
		if want := expectedElement(proxy, chain, d); !reflect.DeepEqual(got[len(got)-1], want) {
			t.Fatalf("round trip =\n%s\nwant\n%s", summary(got[len(got)-1]), summary(want))
		}
	})
}

func checkParse(t *testing.T, elems []Element, err error) {
	t.Helper()
	if err != nil {
		if elems != nil {
			t.Fatal("elements returned with an error")
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error %v wraps no sentinel", err)
	}
	if len(elems) == 0 || len(elems) > DefaultLimits.MaxElements {
		t.Fatalf("%d elements", len(elems))
	}
	for _, e := range elems {
		if e.Hash != nil && len(e.Hash) != sha256.Size {
			t.Fatalf("Hash of %d bytes", len(e.Hash))
		}
		if e.Cert != nil && len(e.Cert) == 0 {
			t.Fatal("empty Cert")
		}
		if e.Chain != nil && (len(e.Chain) == 0 || len(e.Chain) > DefaultLimits.MaxChainCerts) {
			t.Fatalf("Chain of %d", len(e.Chain))
		}
		for _, der := range e.Chain {
			if len(der) == 0 {
				t.Fatal("empty DER in Chain")
			}
		}
		if e.Cert != nil && e.Chain != nil && !bytes.Equal(e.Cert, e.Chain[0]) {
			t.Fatal("Cert != Chain[0]")
		}
		if leaf, err := e.Leaf(); err == nil && e.Hash != nil {
			if sum := sha256.Sum256(leaf); !bytes.Equal(sum[:], e.Hash) {
				t.Fatal("Hash != sha256(leaf)")
			}
		} else if err != nil && (e.Cert != nil || e.Chain != nil) {
			t.Fatal("Leaf failed on an element with a certificate")
		}
		if _, err := Select([]Element{e}, PolicySingle); err != nil {
			t.Fatal(err)
		}
	}
}

func expectedElement(proxy *x509.Certificate, chain []*x509.Certificate, d envoyxfcc.Details) Element {
	var e Element
	if proxy != nil {
		e.By, _ = envoyxfcc.SANs(proxy)
	}
	leaf := chain[0]
	e.Hash = sha256Of(leaf.Raw)
	if d.Cert {
		e.Cert = leaf.Raw
	}
	if d.Chain {
		for _, c := range chain {
			e.Chain = append(e.Chain, c.Raw)
		}
	}
	if d.Subject {
		s, _ := envoyxfcc.FormatSubject(leaf.RawSubject)
		e.Subject, e.HasSubject = unescapeQuoted(s), true
	}
	uris, dns := envoyxfcc.SANs(leaf)
	if d.URI {
		e.URI = uris
	}
	if d.DNS {
		e.DNS = dns
	}
	return e
}

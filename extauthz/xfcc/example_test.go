package xfcc_test

import (
	"errors"
	"fmt"

	"github.com/certbind/certbind/extauthz/xfcc"
)

func Example() {
	// What an Istio sidecar (APPEND_FORWARD) hands on: no Cert, so no certificate to check.
	header := `By=spiffe://cluster.local/ns/foo/sa/httpbin;Hash=dd14782fa2f439724d271dbed846ef843ff40d3932b615da650d028db655fc8d;Subject="";URI=spiffe://cluster.local/ns/foo/sa/curl`

	elems, err := xfcc.Parse(header, xfcc.Limits{})
	if err != nil {
		fmt.Println("deny:", err)
		return
	}
	el, err := xfcc.Select(elems, xfcc.PolicyLast)
	if err != nil {
		fmt.Println("deny:", err)
		return
	}
	fmt.Printf("hash %x...\n", el.Hash[:4])
	if _, err := el.Leaf(); errors.Is(err, xfcc.ErrNoCertificate) {
		fmt.Println("deny:", err)
	}

	_, err = xfcc.Parse(`By=a;Subject="unterminated`, xfcc.Limits{})
	fmt.Println(err)
	// Output:
	// hash dd14782f...
	// deny: xfcc: no certificate
	// xfcc: element 1: pair 2: unmatched quote
}

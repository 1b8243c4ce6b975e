package xfcc

import "fmt"

// Policy says which element of a parsed header describes the connection to the proxy we
// trust, that is, how that proxy is configured (forward_client_cert_details).
type Policy string

const (
	// PolicySingle expects exactly one element, as Envoy writes with SANITIZE_SET: the proxy
	// replaced whatever the client sent. The default and the recommended setting.
	PolicySingle Policy = "single"
	// PolicyLast takes the last element, as Envoy writes with APPEND_FORWARD: the proxy
	// appended its own element after whatever the client and earlier hops sent. Everything
	// before it is unverified. Other proxies differ (Consul puts its own element first).
	PolicyLast Policy = "last"
)

// Select returns the element the policy designates: under PolicySingle the only element
// (ErrTooManyElements if there are more), under PolicyLast the last one. No element at all
// is ErrEmpty.
func Select(elems []Element, p Policy) (Element, error) {
	if len(elems) == 0 {
		return Element{}, fmt.Errorf("xfcc: %w", ErrEmpty)
	}
	switch p {
	case PolicySingle:
		if len(elems) != 1 {
			return Element{}, fmt.Errorf("xfcc: policy %q: %d elements: %w", p, len(elems), ErrTooManyElements)
		}
		return elems[0], nil
	case PolicyLast:
		return elems[len(elems)-1], nil
	}
	return Element{}, fmt.Errorf("xfcc: %w %q", ErrUnknownPolicy, clip(string(p)))
}

package xfcc

import "errors"

// Sentinel errors. Every error returned by this package wraps exactly one of them, with its
// context (for Parse, the position: "xfcc: element 2: pair 3: unmatched quote"); test with
// errors.Is. Messages never quote certificate material or whole values.
var (
	// ErrTooLarge: the header is longer than Limits.MaxHeaderBytes.
	ErrTooLarge = errors.New("header too large")
	// ErrTooManyElements: more elements than Limits.MaxElements, or more than one element
	// under PolicySingle.
	ErrTooManyElements = errors.New("too many elements")
	// ErrEmpty: the header is empty or only whitespace, or Select got no element.
	ErrEmpty = errors.New("no element")
	// ErrUnmatchedQuote: a double quote is never closed.
	ErrUnmatchedQuote = errors.New("unmatched quote")
	// ErrMalformedPair: an empty element or pair, a pair without '=', an empty or quoted key,
	// data after a closing quote, or a quote inside an unquoted value.
	ErrMalformedPair = errors.New("malformed pair")
	// ErrUnknownKey: a key other than By, Hash, Cert, Chain, Subject, URI, DNS (any case).
	ErrUnknownKey = errors.New("unknown key")
	// ErrDuplicateKey: Hash, Cert, Chain or Subject more than once in one element.
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrBadHash: Hash is not 64 hexadecimal characters.
	ErrBadHash = errors.New("bad hash")
	// ErrBadPEM: Cert or Chain is not percent-encoded PEM holding only CERTIFICATE blocks
	// (exactly one for Cert).
	ErrBadPEM = errors.New("bad PEM")
	// ErrHashMismatch: Hash is not the SHA-256 of the leaf (Cert, else the first of Chain).
	ErrHashMismatch = errors.New("hash does not match certificate")
	// ErrChainMismatch: Cert and Chain are both present and Cert is not the first of Chain.
	ErrChainMismatch = errors.New("cert is not the first certificate of chain")
	// ErrChainTooLong: Chain holds more than Limits.MaxChainCerts certificates.
	ErrChainTooLong = errors.New("chain too long")
	// ErrNoCertificate: the element carries neither Cert nor Chain.
	ErrNoCertificate = errors.New("no certificate")
	// ErrUnknownPolicy: Select got a policy other than "single" or "last".
	ErrUnknownPolicy = errors.New("unknown element policy")
)

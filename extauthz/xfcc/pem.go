package xfcc

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// strictBase64 rejects non-zero padding bits, so one DER has one encoding.
var strictBase64 = base64.StdEncoding.Strict()

const (
	pemBegin = "-----BEGIN CERTIFICATE-----"
	pemEnd   = "-----END CERTIFICATE-----"
)

// DecodeCert decodes one URL-encoded PEM certificate with the rules of a Cert value: Envoy
// writes its include_peer_certificate attribute (and nginx $ssl_client_escaped_cert) the same
// way.
func DecodeCert(value string) ([]byte, error) {
	ders, err := decodeCerts(value, 1, false)
	if err != nil {
		return nil, err
	}
	return ders[0], nil
}

// decodeCerts percent-decodes value and returns the DER of its CERTIFICATE blocks, at least
// one and at most max. Only whitespace may surround the blocks; anything else, including PEM
// headers and other block types (a private key), is ErrBadPEM. Blocks are counted before
// they are decoded.
func decodeCerts(value string, max int, chain bool) ([][]byte, error) {
	if value == "" {
		return nil, fmt.Errorf("%w: empty value", ErrBadPEM)
	}
	text, ok := pathUnescape(value)
	if !ok {
		return nil, fmt.Errorf("%w: bad percent-encoding", ErrBadPEM)
	}
	var ders [][]byte
	for rest := trimLeftSpaceBytes(text); len(rest) > 0; rest = trimLeftSpaceBytes(rest) {
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, fmt.Errorf("%w: data outside PEM blocks", ErrBadPEM)
		}
		if len(ders) == max {
			if chain {
				return nil, fmt.Errorf("%w: more than %d certificates", ErrChainTooLong, max)
			}
			return nil, fmt.Errorf("%w: more than one certificate", ErrBadPEM)
		}
		der, n, err := decodeBlock(rest)
		if err != nil {
			return nil, err
		}
		ders = append(ders, der)
		rest = rest[n:]
	}
	if len(ders) == 0 {
		return nil, fmt.Errorf("%w: no PEM block", ErrBadPEM)
	}
	return ders, nil
}

// pathUnescape is url.PathUnescape without its intermediate string: %XX (either case) is
// decoded, everything else, '+' included, is kept; a '%' not followed by two hex digits fails.
func pathUnescape(s string) ([]byte, bool) {
	out := make([]byte, 0, len(s))
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			return append(out, s...), true
		}
		if i+2 >= len(s) {
			return nil, false
		}
		var err error
		if out, err = hex.AppendDecode(append(out, s[:i]...), []byte(s[i+1:i+3])); err != nil {
			return nil, false
		}
		s = s[i+3:]
	}
}

// decodeBlock decodes the CERTIFICATE block at the start of s and returns its DER and length.
func decodeBlock(s []byte) ([]byte, int, error) {
	if !bytes.HasPrefix(s, []byte(pemBegin)) {
		return nil, 0, fmt.Errorf("%w: not a CERTIFICATE block", ErrBadPEM)
	}
	body := s[len(pemBegin):]
	end := bytes.Index(body, []byte(pemEnd))
	if end < 0 {
		return nil, 0, fmt.Errorf("%w: missing END line", ErrBadPEM)
	}
	body = body[:end]
	if bytes.IndexByte(body, ':') >= 0 {
		return nil, 0, fmt.Errorf("%w: PEM headers", ErrBadPEM)
	}
	n := len(pemBegin) + end + len(pemEnd)
	if n < len(s) && !isSpace(s[n]) {
		return nil, 0, fmt.Errorf("%w: data after END line", ErrBadPEM)
	}
	der := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
	m, err := strictBase64.Decode(der, body)
	if err != nil {
		// The decoder skips only CR and LF; drop other whitespace and try once more (in
		// place: body is this function's own copy of the header).
		w := 0
		for _, c := range body {
			if !isSpace(c) {
				body[w] = c
				w++
			}
		}
		if m, err = strictBase64.Decode(der, body[:w]); err != nil {
			return nil, 0, fmt.Errorf("%w: invalid base64", ErrBadPEM)
		}
	}
	if m == 0 {
		return nil, 0, fmt.Errorf("%w: empty certificate", ErrBadPEM)
	}
	return der[:m:m], n, nil
}

func trimLeftSpaceBytes(s []byte) []byte {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	return s
}

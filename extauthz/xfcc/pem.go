package xfcc

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
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
	return appendCerts(nil, value, max, chain)
}

// appendCerts is decodeCerts after the certificates in ders, which count towards max: value
// continues a value whose certificates those are.
func appendCerts(ders [][]byte, value string, max int, chain bool) ([][]byte, error) {
	bp := textBufs.Get().(*[]byte)
	defer textBufs.Put(bp)
	text, ok := pathUnescape((*bp)[:0], value)
	if !ok {
		return nil, fmt.Errorf("%w: bad percent-encoding", ErrBadPEM)
	}
	if cap(text) <= maxPooledText {
		*bp = text
	}
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

// textBufs holds the buffers values are percent-decoded into: the text lives only until its
// blocks are decoded (every DER is a copy), and a Chain is a few kilobytes.
var textBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledText bounds the buffers kept in textBufs, so one large header does not pin its
// buffer.
const maxPooledText = 64 << 10

// pathUnescape appends s to dst as url.PathUnescape decodes it, without its intermediate
// string: %XX (either case) is decoded, everything else, '+' included, is kept; a '%' not
// followed by two hex digits fails.
func pathUnescape(dst []byte, s string) ([]byte, bool) {
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			return append(dst, s...), true
		}
		if i+2 >= len(s) {
			return nil, false
		}
		var b [1]byte
		if _, err := hex.Decode(b[:], []byte(s[i+1:i+3])); err != nil {
			return nil, false
		}
		dst = append(append(dst, s[:i]...), b[0])
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
		// place: body is the caller's percent-decoded copy of the header).
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

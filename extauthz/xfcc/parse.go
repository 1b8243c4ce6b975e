package xfcc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Element is one XFCC element as parsed: what one proxy said about the client certificate of
// one connection. Cert and Chain are already percent-decoded (as url.PathUnescape does, never
// QueryUnescape: a literal '+' stays '+') and PEM-decoded into DER; Parse has checked that Hash
// matches the leaf and that Cert is the first certificate of Chain. The DER is not parsed as
// X.509: that, and every trust decision, belongs to the caller.
//
// By, URI and DNS hold the non-empty values in order: Envoy writes `URI=` when the client
// certificate has no URI SAN, and that adds nothing. Subject, URI and DNS are informational
// only: Envoy does not escape URI or DNS values (see the package documentation), and Subject
// is a rendering of the certificate, so identity must always come from the certificate.
type Element struct {
	By         []string // the proxy's own URI SANs
	Hash       []byte   // 32 bytes, decoded from lower- or upper-case hex; nil when absent
	Cert       []byte   // DER of the leaf; nil when absent
	Chain      [][]byte // DERs as sent, leaf first; nil when absent
	Subject    string   // the value with \" and \\ unescaped (Envoy's RFC 2253 \" and \\ too)
	HasSubject bool     // Subject was present, possibly empty (`Subject=""`)
	URI        []string // informational only
	DNS        []string // informational only
}

// Leaf returns the leaf DER: Cert, else Chain[0], else ErrNoCertificate.
func (e Element) Leaf() ([]byte, error) {
	switch {
	case e.Cert != nil:
		return e.Cert, nil
	case len(e.Chain) > 0:
		return e.Chain[0], nil
	}
	return nil, fmt.Errorf("xfcc: %w", ErrNoCertificate)
}

// Limits bounds the work Parse does. A zero or negative field takes its value from
// DefaultLimits, so the zero Limits is DefaultLimits.
type Limits struct {
	MaxHeaderBytes int // length of the whole header value
	MaxElements    int // elements in the header (one per proxy hop)
	MaxChainCerts  int // certificates in one Chain
}

// DefaultLimits: 64 KiB holds Cert plus a Chain of 10 certificates of RSA-2048 size (about
// 1.9 KB each once percent-encoded) with room to spare; 16 elements is far more proxy hops
// than a real path has.
var DefaultLimits = Limits{MaxHeaderBytes: 64 << 10, MaxElements: 16, MaxChainCerts: 10}

func (l Limits) withDefaults() Limits {
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultLimits.MaxHeaderBytes
	}
	if l.MaxElements <= 0 {
		l.MaxElements = DefaultLimits.MaxElements
	}
	if l.MaxChainCerts <= 0 {
		l.MaxChainCerts = DefaultLimits.MaxChainCerts
	}
	return l
}

// Parse parses an x-forwarded-client-cert header value into its elements, leftmost (oldest
// hop) first. It fails on the first problem, in header order; see the Err* sentinels. Parse is
// linear in len(header) and checks MaxHeaderBytes before reading the header.
func Parse(header string, lim Limits) ([]Element, error) {
	lim = lim.withDefaults()
	if len(header) > lim.MaxHeaderBytes {
		return nil, fmt.Errorf("xfcc: %d bytes, limit %d: %w", len(header), lim.MaxHeaderBytes, ErrTooLarge)
	}
	if trimSpace(header) == "" {
		return nil, fmt.Errorf("xfcc: %w", ErrEmpty)
	}
	b := builder{lim: lim}
	if err := scan(header, lim.MaxElements, &b); err != nil {
		return nil, err
	}
	return b.out, nil
}

// sink receives what scan finds, in header order. Indexes are zero-based.
type sink interface {
	pair(elem, pair int, text string) error
	endElement(elem int) error
}

// scan splits h into elements (',') and pairs (';') outside double quotes, the way Envoy's own
// parser does (source/extensions/formatter/xfcc_value/xfcc_value.cc): a '"' toggles quoting
// unless it follows an odd number of backslashes. Unlike Envoy's, it keeps the length of the
// current backslash run instead of counting backwards, so it is linear. It stops as soon as an
// element beyond maxElems starts.
func scan(h string, maxElems int, s sink) error {
	inQuotes := false
	backslashes := 0
	elem, pair, start := 0, 0, 0
	for i := 0; i < len(h); i++ {
		if !special[h[i]] {
			// Skip the run of ordinary bytes: most of a header is inside Cert and Chain.
			for i+1 < len(h) && !special[h[i+1]] {
				i++
			}
			backslashes = 0
			continue
		}
		c := h[i]
		switch c {
		case '\\':
			backslashes++
			continue
		case '"':
			if backslashes%2 == 0 {
				inQuotes = !inQuotes
			}
		case ';', ',':
			if inQuotes {
				break
			}
			if err := s.pair(elem, pair, h[start:i]); err != nil {
				return err
			}
			start, pair = i+1, pair+1
			if c == ',' {
				if err := s.endElement(elem); err != nil {
					return err
				}
				elem, pair = elem+1, 0
				if elem >= maxElems {
					return fmt.Errorf("xfcc: more than %d elements: %w", maxElems, ErrTooManyElements)
				}
			}
		}
		backslashes = 0
	}
	if inQuotes {
		// No unquoted separator follows the opening quote, so it is in the last pair.
		return pairErr(elem, pair, "", ErrUnmatchedQuote)
	}
	if err := s.pair(elem, pair, h[start:]); err != nil {
		return err
	}
	return s.endElement(elem)
}

// special marks the bytes scan acts on.
var special = [256]bool{'\\': true, '"': true, ';': true, ',': true}

// splitPair splits one pair at its first '=' and returns the trimmed key and the value, with
// its quotes removed and, inside quotes, \" and \\ unescaped.
func splitPair(text string) (key, value string, err error) {
	eq := strings.IndexByte(text, '=')
	if eq < 0 {
		if trimSpace(text) == "" {
			return "", "", fmt.Errorf("%w: empty pair", ErrMalformedPair)
		}
		return "", "", fmt.Errorf("%w: missing '='", ErrMalformedPair)
	}
	key = trimSpace(text[:eq])
	switch {
	case key == "":
		return "", "", fmt.Errorf("%w: empty key", ErrMalformedPair)
	case strings.IndexByte(key, '"') >= 0:
		return "", "", fmt.Errorf("%w: quoted key", ErrMalformedPair)
	}
	value, err = unquote(trimSpace(text[eq+1:]))
	return key, value, err
}

// unquote returns v without its surrounding quotes, \" and \\ unescaped inside them (and
// nothing else, like Envoy's parser). An unquoted value is returned as is: Envoy writes By,
// URI and DNS raw, so unescaping them would alter the certificate's SAN.
func unquote(v string) (string, error) {
	if v == "" || v[0] != '"' {
		if unescapedQuote(v, 0) >= 0 {
			return "", fmt.Errorf("%w: quote inside unquoted value", ErrMalformedPair)
		}
		return v, nil
	}
	end := unescapedQuote(v, 1)
	switch {
	case end < 0:
		return "", ErrUnmatchedQuote
	case end != len(v)-1:
		return "", fmt.Errorf("%w: data after closing quote", ErrMalformedPair)
	}
	inner := v[1:end]
	if strings.IndexByte(inner, '\\') < 0 {
		return inner, nil
	}
	var sb strings.Builder
	sb.Grow(len(inner))
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		if c == '\\' && i+1 < len(inner) && (inner[i+1] == '"' || inner[i+1] == '\\') {
			i++
			c = inner[i]
		}
		sb.WriteByte(c)
	}
	return sb.String(), nil
}

// unescapedQuote returns the index of the first '"' at or after from that is not preceded by
// an odd number of backslashes (counted back to from), or -1. Each backslash run is counted
// once, for the quote that follows it, so the search is linear.
func unescapedQuote(s string, from int) int {
	for i := from; i < len(s); i++ {
		j := strings.IndexByte(s[i:], '"')
		if j < 0 {
			return -1
		}
		i += j
		backslashes := 0
		for k := i - 1; k >= from && s[k] == '\\'; k-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return i
		}
	}
	return -1
}

type keyKind uint8

const (
	keyUnknown keyKind = iota
	keyBy
	keyHash
	keyCert
	keyChain
	keySubject
	keyURI
	keyDNS
)

// keyNames are the canonical spellings, as Envoy writes them.
var keyNames = [...]string{"", "By", "Hash", "Cert", "Chain", "Subject", "URI", "DNS"}

func kindOf(key string) keyKind {
	for k := keyBy; k <= keyDNS; k++ {
		if strings.EqualFold(key, keyNames[k]) {
			return k
		}
	}
	return keyUnknown
}

// builder turns scanned pairs into Elements.
type builder struct {
	lim  Limits
	out  []Element
	cur  Element
	seen [keyDNS + 1]bool
	// afterBy: the element has had a pair other than By.
	afterBy bool
	// certValue is the element's Cert value as sent, once decoded into cur.Cert.
	certValue string
}

func (b *builder) pair(elem, pair int, text string) error {
	key, value, err := splitPair(text)
	if err != nil {
		return pairErr(elem, pair, "", err)
	}
	k := kindOf(key)
	if k == keyUnknown {
		return pairErr(elem, pair, "", fmt.Errorf("%w %q", ErrUnknownKey, clip(key)))
	}
	name := keyNames[k]
	// Envoy writes the proxy's By pairs first. A By after the client's own pairs can only come
	// from a client URI SAN holding ";By=..." (Envoy does not escape SANs), forging a trusted
	// proxy's identity for xfcc.trusted_proxies.
	if k == keyBy && b.afterBy {
		return pairErr(elem, pair, name, fmt.Errorf("%w: By after the client's pairs", ErrMalformedPair))
	}
	b.afterBy = b.afterBy || k != keyBy
	switch k {
	case keyHash, keyCert, keyChain, keySubject:
		if b.seen[k] {
			return pairErr(elem, pair, name, ErrDuplicateKey)
		}
		b.seen[k] = true
	}
	switch k {
	case keyBy:
		if value != "" {
			b.cur.By = append(b.cur.By, value)
		}
	case keyURI:
		if value != "" {
			b.cur.URI = append(b.cur.URI, value)
		}
	case keyDNS:
		if value != "" {
			b.cur.DNS = append(b.cur.DNS, value)
		}
	case keySubject:
		b.cur.Subject, b.cur.HasSubject = value, true
	case keyHash:
		if len(value) != 2*sha256.Size {
			return pairErr(elem, pair, name, fmt.Errorf("%w: %d characters, want %d", ErrBadHash, len(value), 2*sha256.Size))
		}
		sum, err := hex.DecodeString(value)
		if err != nil {
			return pairErr(elem, pair, name, fmt.Errorf("%w: not hexadecimal", ErrBadHash))
		}
		b.cur.Hash = sum
	case keyCert:
		ders, err := decodeCerts(value, 1, false)
		if err != nil {
			return pairErr(elem, pair, name, err)
		}
		b.cur.Cert, b.certValue = ders[0], value
	case keyChain:
		var ders [][]byte
		var err error
		if rest, ok := b.afterCert(value); ok {
			ders, err = appendCerts([][]byte{b.cur.Cert}, rest, b.lim.MaxChainCerts, true)
		} else {
			ders, err = decodeCerts(value, b.lim.MaxChainCerts, true)
		}
		if err != nil {
			return pairErr(elem, pair, name, err)
		}
		b.cur.Chain = ders
	}
	return nil
}

// afterCert: Envoy writes the Chain as the leaf's PEM, exactly as in Cert, followed by the
// issuers', so a Chain that starts with the Cert value just decoded need not have its first
// certificate decoded again. It holds only when the Cert value ends with an encoded line
// break: decoding is then the same whether the value is read whole or in two parts (the
// percent-decoding and the PEM blocks both break there).
func (b *builder) afterCert(chain string) (rest string, ok bool) {
	if b.cur.Cert == nil || !strings.HasSuffix(b.certValue, "%0A") {
		return "", false
	}
	return strings.CutPrefix(chain, b.certValue)
}

func (b *builder) endElement(elem int) error {
	e := b.cur
	b.cur, b.seen, b.afterBy, b.certValue = Element{}, [keyDNS + 1]bool{}, false, ""
	if e.Cert != nil && e.Chain != nil && !bytes.Equal(e.Cert, e.Chain[0]) {
		return elemErr(elem, ErrChainMismatch)
	}
	if e.Hash != nil {
		if leaf, err := e.Leaf(); err == nil {
			if sum := sha256.Sum256(leaf); !bytes.Equal(sum[:], e.Hash) {
				return elemErr(elem, ErrHashMismatch)
			}
		}
	}
	b.out = append(b.out, e)
	return nil
}

func pairErr(elem, pair int, key string, err error) error {
	if key != "" {
		return fmt.Errorf("xfcc: element %d: pair %d (%s): %w", elem+1, pair+1, key, err)
	}
	return fmt.Errorf("xfcc: element %d: pair %d: %w", elem+1, pair+1, err)
}

func elemErr(elem int, err error) error {
	return fmt.Errorf("xfcc: element %d: %w", elem+1, err)
}

// clip shortens attacker-chosen text before it goes into an error message.
func clip(s string) string {
	const max = 32
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// isSpace is ASCII whitespace as absl::StripAsciiWhitespace sees it.
func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

func trimLeftSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	return s
}

func trimSpace(s string) string {
	s = trimLeftSpace(s)
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

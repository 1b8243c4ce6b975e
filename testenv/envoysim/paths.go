package envoysim

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// EscapedSlashesAction is the HTTP connection manager's path_with_escaped_slashes_action.
type EscapedSlashesAction = hcmv3.HttpConnectionManager_PathWithEscapedSlashesAction

// PathOptions is how the HTTP connection manager rewrites :path before routing
// (normalize_path, merge_slashes, path_with_escaped_slashes_action). envoy.Summary does not carry
// it; PathsOf reads it from a bootstrap.
type PathOptions struct {
	NormalizePath  bool
	MergeSlashes   bool
	EscapedSlashes EscapedSlashesAction
}

// ShippedPaths is the path handling of envoy/envoy.yaml and envoy/envoy-self-signed.yaml, used
// when Config.Paths is nil. A test checks it against PathsOf of both files.
var ShippedPaths = PathOptions{
	NormalizePath:  true,
	MergeSlashes:   true,
	EscapedSlashes: hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT,
}

var hcmTypeURL = "type.googleapis.com/" + string((&hcmv3.HttpConnectionManager{}).ProtoReflect().Descriptor().FullName())

// PathsOf reads PathOptions from the single HTTP connection manager of a bootstrap's static
// listeners (the shape envoy.Summarize accepts). Envoy's defaults apply to unset fields:
// normalize_path and merge_slashes off, IMPLEMENTATION_SPECIFIC_DEFAULT meaning KEEP_UNCHANGED.
func PathsOf(b *bootstrapv3.Bootstrap) (PathOptions, error) {
	var found []*hcmv3.HttpConnectionManager
	for _, l := range b.GetStaticResources().GetListeners() {
		chains := append([]*listenerv3.FilterChain{}, l.GetFilterChains()...)
		if c := l.GetDefaultFilterChain(); c != nil {
			chains = append(chains, c)
		}
		for _, c := range chains {
			for _, f := range c.GetFilters() {
				tc := f.GetTypedConfig()
				if tc.GetTypeUrl() != hcmTypeURL {
					continue
				}
				hcm := &hcmv3.HttpConnectionManager{}
				if err := anypb.UnmarshalTo(tc, hcm, proto.UnmarshalOptions{}); err != nil {
					return PathOptions{}, fmt.Errorf("envoysim: listener %q: %w", l.GetName(), err)
				}
				found = append(found, hcm)
			}
		}
	}
	if len(found) != 1 {
		return PathOptions{}, fmt.Errorf("envoysim: %d HTTP connection managers, want 1", len(found))
	}
	h := found[0]
	return PathOptions{
		NormalizePath:  h.GetNormalizePath().GetValue(),
		MergeSlashes:   h.GetMergeSlashes(),
		EscapedSlashes: h.GetPathWithEscapedSlashesAction(),
	}, nil
}

func (o PathOptions) validate() error {
	switch o.EscapedSlashes {
	case hcmv3.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT, hcmv3.HttpConnectionManager_KEEP_UNCHANGED,
		hcmv3.HttpConnectionManager_REJECT_REQUEST, hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT,
		hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD:
		return nil
	}
	return errors.New("envoysim: unknown path_with_escaped_slashes_action " + o.EscapedSlashes.String())
}

type pathAction int

const (
	pathContinue pathAction = iota
	pathReject              // 400
	pathRedirect            // 307 to the rewritten path
)

// normalize is ConnectionManagerUtility::maybeNormalizePath (source/common/http/conn_manager_utility.cc):
// a fragment is rejected (envoy.reloadable_features.http_reject_path_with_fragment, on by default);
// %2F/%5C are unescaped per path_with_escaped_slashes_action; then normalize_path (RFC 3986
// canonicalization, a failure rejects) and merge_slashes, each on the part before '?'.
func (o PathOptions) normalize(p string) (string, pathAction) {
	if strings.IndexByte(p, '#') >= 0 {
		return p, pathReject
	}
	action := pathContinue
	switch o.EscapedSlashes {
	case hcmv3.HttpConnectionManager_REJECT_REQUEST, hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT,
		hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD:
		if np, found := unescapeSlashes(p); found {
			p = np
			switch o.EscapedSlashes {
			case hcmv3.HttpConnectionManager_REJECT_REQUEST:
				return p, pathReject
			case hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT:
				action = pathRedirect
			}
		}
	}
	if o.NormalizePath {
		path, query := splitQuery(p)
		c, ok := canonicalPath(path)
		if !ok {
			return p, pathReject
		}
		p = c + query
	}
	if o.MergeSlashes {
		p = mergeSlashes(p)
	}
	return p, action
}

// splitQuery splits at the first '?': the query part keeps its '?'.
func splitQuery(p string) (path, query string) {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

// unescapeSlashes is PathUtil::unescapeSlashes (source/common/http/path_utility.cc).
func unescapeSlashes(p string) (string, bool) {
	path, query := splitQuery(p)
	if !strings.Contains(path, "%") {
		return p, false
	}
	r := strings.NewReplacer("%2F", "/", "%2f", "/", "%5C", `\`, "%5c", `\`)
	np := r.Replace(path)
	return np + query, len(np) != len(path)
}

// mergeSlashes is PathUtil::mergeSlashes / PathTransformer::mergeSlashes.
func mergeSlashes(p string) string {
	path, query := splitQuery(p)
	if !strings.Contains(path, "//") {
		return p
	}
	var prefix, suffix string
	if strings.HasPrefix(path, "/") {
		prefix = "/"
	}
	if strings.HasSuffix(path, "/") {
		suffix = "/"
	}
	var segs []string
	for _, s := range strings.Split(path, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	return prefix + strings.Join(segs, "/") + suffix + query
}

// Character classes of Chromium's path canonicalizer (url/url_canon_path.cc, the table of
// Envoy's snapshot in source/common/chromium_url).
const (
	chPass     = 0
	chSpecial  = 1
	chEscape   = 2 | chSpecial
	chUnescape = 4
	chInvalid  = 8 | chSpecial
)

var pathChars = func() (t [256]byte) {
	for c := 0; c < 0x20; c++ {
		t[c] = chEscape
	}
	t[0] = chInvalid
	for c := 0x80; c < 0x100; c++ {
		t[c] = chEscape
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = chUnescape
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = chUnescape
		t[c+'a'-'A'] = chUnescape
	}
	for _, c := range " \"#%<>?\\^`{|}\x7f" {
		t[c] = chEscape
	}
	for _, c := range "-_~" {
		t[c] = chUnescape
	}
	t['.'] = chSpecial
	// Everything else ("!$&'()*+,/:;=@[]") passes unchanged.
	return t
}()

// canonicalPath is url::CanonicalizePath as Envoy's PathUtil::canonicalPath calls it on the part
// of :path before '?': a leading '/' is added if missing; "." and ".." segments (also written
// %2e) are resolved and never climb above the root; '\' becomes '/'; escapes of unreserved
// characters are decoded, other valid escapes kept as written; characters that must be escaped
// are (upper-case hex); an escaped or raw NUL, or invalid UTF-8, fails (Envoy answers 400).
// Slashes are not merged.
func canonicalPath(in string) (string, bool) {
	if in == "" {
		return "/", true
	}
	c := pathCanonicalizer{in: in, out: make([]byte, 0, len(in)+8), ok: true, lastInvalidPercent: math.MinInt}
	if !isURLSlash(in[0]) {
		c.out = append(c.out, '/')
	}
	for i := 0; i < len(in); {
		i += c.step(i)
	}
	return string(c.out), c.ok
}

// pathCanonicalizer is the state of one canonicalPath: the input, the output so far, whether
// the path is still valid, and where in out the last '%' that began no valid escape was
// written (math.MinInt if none), for checkForNestedEscapes.
type pathCanonicalizer struct {
	in                 string
	out                []byte
	ok                 bool
	lastInvalidPercent int
}

// step canonicalizes what starts at in[i] and returns how many bytes of in it consumed.
func (c *pathCanonicalizer) step(i int) int {
	ch := c.in[i]
	flags := pathChars[ch]
	if flags&chSpecial == 0 {
		c.out = append(c.out, ch)
		return 1
	}
	if dl := isDot(c.in, i); dl > 0 {
		return c.dot(i, dl)
	}
	switch {
	case ch == '\\':
		c.out = append(c.out, '/')
	case ch == '%':
		return c.escape(i)
	case ch >= utf8.RuneSelf:
		return c.nonASCII(i)
	case flags&chInvalid == chInvalid:
		c.out = appendEscaped(c.out, ch)
		c.ok = false
	case flags&chEscape == chEscape:
		c.out = appendEscaped(c.out, ch)
	}
	return 1
}

// dot handles a dot of length dl at in[i]: at the start of a segment, "." and ".." segments
// are resolved (".." drops the previous segment); any other dot is kept as '.'.
func (c *pathCanonicalizer) dot(i, dl int) int {
	if len(c.out) == 0 || c.out[len(c.out)-1] != '/' {
		c.out = append(c.out, '.')
		return dl
	}
	consumed, disp := classifyAfterDot(c.in, i+dl)
	switch disp {
	case dotNotDirectory:
		c.out = append(c.out, '.')
		return dl
	case dotUp:
		c.out = backUpToPreviousSlash(c.out)
	}
	return dl + consumed
}

// escape handles the '%' at in[i]: an escape of an unreserved character is decoded, another
// valid escape is kept as written (an escaped NUL fails), and a '%' that begins no valid
// escape is kept as is (the permissive behaviour), remembered for nested escapes.
func (c *pathCanonicalizer) escape(i int) int {
	v, valid := decodeEscaped(c.in, i)
	if !valid {
		c.lastInvalidPercent = len(c.out)
		c.out = append(c.out, '%')
		return 1
	}
	vf := pathChars[v]
	if vf&chUnescape != 0 {
		c.out = append(c.out, v)
		if c.lastInvalidPercent >= len(c.out)-3 {
			c.out = checkForNestedEscapes(c.in, i+3, c.lastInvalidPercent, c.out)
		}
		return 3
	}
	c.out = append(c.out, '%', c.in[i+1], c.in[i+2])
	if vf&chInvalid == chInvalid {
		c.ok = false
	}
	return 3
}

// nonASCII handles a byte >= 0x80 at in[i]. Current Chromium reads UTF-8 here: a valid
// sequence is escaped byte by byte, an invalid one becomes an escaped U+FFFD and fails.
func (c *pathCanonicalizer) nonASCII(i int) int {
	r, size := utf8.DecodeRuneInString(c.in[i:])
	if r == utf8.RuneError && size <= 1 {
		c.out = append(c.out, "%EF%BF%BD"...)
		c.ok = false
		return 1
	}
	for j := 0; j < size; j++ {
		c.out = appendEscaped(c.out, c.in[i+j])
	}
	return size
}

func isURLSlash(c byte) bool { return c == '/' || c == '\\' }

// isDot returns the length of a dot at s[i]: 1 for '.', 3 for %2e or %2E, 0 otherwise.
func isDot(s string, i int) int {
	if s[i] == '.' {
		return 1
	}
	if s[i] == '%' && i+3 <= len(s) && s[i+1] == '2' && (s[i+2] == 'e' || s[i+2] == 'E') {
		return 3
	}
	return 0
}

type dotDisposition int

const (
	dotNotDirectory dotDisposition = iota
	dotCurrent
	dotUp
)

func classifyAfterDot(s string, after int) (consumed int, d dotDisposition) {
	if after == len(s) {
		return 0, dotCurrent
	}
	if isURLSlash(s[after]) {
		return 1, dotCurrent
	}
	if second := isDot(s, after); second > 0 {
		next := after + second
		if next == len(s) {
			return second, dotUp
		}
		if isURLSlash(s[next]) {
			return second + 1, dotUp
		}
	}
	return 0, dotNotDirectory
}

// backUpToPreviousSlash drops the last segment of out, which ends with '/', never going above
// the first slash.
func backUpToPreviousSlash(out []byte) []byte {
	i := len(out) - 1
	if i == 0 {
		return out
	}
	i--
	for out[i] != '/' && i > 0 {
		i--
	}
	return out[:i+1]
}

// decodeEscaped decodes the escape "%XY" at s[i].
func decodeEscaped[S ~string | ~[]byte](s S, i int) (byte, bool) {
	if i+3 > len(s) {
		return 0, false
	}
	hi, ok1 := unhex(s[i+1])
	lo, ok2 := unhex(s[i+2])
	if !ok1 || !ok2 {
		return 0, false
	}
	return hi<<4 | lo, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

const upperHex = "0123456789ABCDEF"

func appendEscaped(out []byte, c byte) []byte {
	return append(out, '%', upperHex[c>>4], upperHex[c&0xf])
}

// checkForNestedEscapes is Chromium's CheckForNestedEscapes: after an unescape that follows an
// invalid '%' (at lastInvalid in out), make sure the output does not now spell a valid escape
// ("%%300" must not become "%00"): that '%' is then written as %25.
func checkForNestedEscapes(in string, next, lastInvalid int, out []byte) []byte {
	length := len(out)
	lastUnescaped := out[length-1]
	appendNext := lastInvalid == length-2
	if appendNext {
		if next == len(in) || in[next] >= utf8.RuneSelf {
			return out
		}
		out = append(out, in[next])
	}
	if _, ok := decodeEscaped(out, lastInvalid); ok {
		if !appendNext {
			out = append(out, out[lastInvalid+1])
		}
		out[lastInvalid+1] = '2'
		out[lastInvalid+2] = '5'
		return append(out, lastUnescaped)
	}
	if appendNext {
		out = out[:length]
	}
	return out
}

package token

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/certbind/certbind/policy/jwks"
)

// Claims are the facts of a verified access token that certbind decides on.
type Claims struct {
	Issuer    string
	Subject   string
	ClientID  string // client_id (RFC 9068), else azp
	Audience  []string
	Scopes    []string
	Expiry    time.Time // zero when absent (introspection may omit it)
	NotBefore time.Time
	// Confirmation is the cnf claim (RFC 7800); nil when the token has none.
	Confirmation *Confirmation

	// keys is the issuer's key set whose key verified the signature (nil for introspection).
	keys *jwks.Set
}

// Confirmation is a token's cnf claim as far as RFC 8705 and RFC 9449 need it.
type Confirmation struct {
	// X5tS256 is the x5t#S256 member exactly as written (RFC 8705 section 3.1); "" when absent.
	X5tS256 string
	// JKT is the jkt member (RFC 9449 section 6.1): the base64url SHA-256 thumbprint of the
	// DPoP key, checked to be 43 base64url characters; "" when absent.
	JKT string
	// Members lists every member name, to tell a token bound by another method (x5t, jwk)
	// from one certbind can check.
	Members []string
}

// maxDepth bounds JSON nesting in tokens and introspection responses.
const maxDepth = 32

// parseObject reads one JSON object strictly: no duplicate member names at any depth (RFC 7519
// section 4 lets a parser reject them, and two parsers picking different duplicates is how
// claims get smuggled), nesting bounded, nothing after the object. It returns the top-level
// members as encoding/json would decode the object into a map[string]json.RawMessage (names
// decoded, values exactly as written), read in the same pass that checks the names: the values
// share data's memory.
func parseObject(data []byte) (map[string]json.RawMessage, error) {
	if !json.Valid(data) {
		if err := explainInvalid(data); err != nil {
			return nil, err
		}
		return nil, errors.New("malformed JSON")
	}
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, errors.New("not a JSON object")
	}
	// json.Valid has checked the syntax, so this scan only tracks nesting, member names and
	// where each top-level value begins and ends.
	type frame struct {
		object    bool
		expectKey bool
		keys      int                 // index in names where this object's names start
		set       map[string]struct{} // once an object has many names
	}
	var stack [maxDepth]frame
	depth := 0
	var names []string
	top := make(map[string]json.RawMessage, 8)
	topName, topStart := "", -1 // the top-level member being read, and where its value starts
	endTop := func(end int) {
		if topStart >= 0 {
			top[topName] = json.RawMessage(trimRightSpace(data[topStart:end]))
			topStart = -1
		}
	}
	for i < len(data) {
		switch c := data[i]; c {
		case '{', '[':
			if depth == maxDepth {
				return nil, fmt.Errorf("JSON nested deeper than %d", maxDepth)
			}
			stack[depth] = frame{object: c == '{', expectKey: c == '{', keys: len(names)}
			depth++
			i++
		case '}', ']':
			depth--
			if depth == 0 {
				endTop(i)
			}
			names = names[:stack[depth].keys]
			i++
		case ':':
			if depth == 1 {
				topStart = skipSpace(data, i+1)
			}
			i++
		case ',':
			if depth == 1 {
				endTop(i)
			}
			if depth > 0 && stack[depth-1].object {
				stack[depth-1].expectKey = true
			}
			i++
		case '"':
			end := stringEnd(data, i)
			if f := &stack[depth-1]; f.object && f.expectKey {
				f.expectKey = false
				name, err := memberName(data[i:end])
				if err != nil {
					return nil, err
				}
				if depth == 1 {
					topName = name
				}
				if f.set != nil {
					if _, dup := f.set[name]; dup {
						return nil, fmt.Errorf("duplicate member %q", name)
					}
					f.set[name] = struct{}{}
				} else {
					for _, n := range names[f.keys:] {
						if n == name {
							return nil, fmt.Errorf("duplicate member %q", name)
						}
					}
					names = append(names, name)
					if len(names)-f.keys > 16 { // many names: switch to a set
						f.set = make(map[string]struct{}, 32)
						for _, n := range names[f.keys:] {
							f.set[n] = struct{}{}
						}
						names = names[:f.keys]
					}
				}
			}
			i = end
		default:
			i++
		}
	}
	return top, nil
}

// explainInvalid names what is wrong with data that json.Valid refused, token by token, with
// the same limits: only malformed input takes this slower path.
func explainInvalid(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]struct{}
		expect bool // in an object: the next string token is a key
	}
	var stack []*frame
	first := true
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) && len(stack) == 0 && !first {
				return nil
			}
			return fmt.Errorf("malformed JSON: %w", err)
		}
		if first {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return errors.New("not a JSON object")
			}
		} else if len(stack) == 0 {
			return errors.New("data after the JSON object")
		}
		first = false
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expect {
			if k, ok := tok.(string); ok {
				if _, dup := top.keys[k]; dup {
					return fmt.Errorf("duplicate member %q", k)
				}
				top.keys[k] = struct{}{}
				top.expect = false
				continue
			}
		}
		switch d := tok.(type) {
		case json.Delim:
			switch d {
			case '{', '[':
				if len(stack) >= maxDepth {
					return fmt.Errorf("JSON nested deeper than %d", maxDepth)
				}
				stack = append(stack, &frame{object: d == '{', keys: map[string]struct{}{}, expect: d == '{'})
				continue
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].expect = true
		}
	}
}

func trimRightSpace(b []byte) []byte {
	for len(b) > 0 && isJSONSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string literal starting at b[i] (a '"'); the input is
// valid JSON.
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// memberName is the decoded value of a member name literal, as encoding/json would decode it:
// escapes resolved and invalid UTF-8 replaced, so "a" and "\u0061" are the same name.
func memberName(lit []byte) (string, error) {
	plain := true
	for _, c := range lit[1 : len(lit)-1] {
		if c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return string(lit[1 : len(lit)-1]), nil
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "", fmt.Errorf("malformed JSON: %w", err)
	}
	return s, nil
}

// claimsFrom extracts Claims from a parsed claims object (a JWT payload or an introspection
// response; RFC 7662 section 2.2 uses the same names).
func claimsFrom(m map[string]json.RawMessage) (*Claims, error) {
	c := &Claims{}
	var err error
	str := func(name string, dst *string) {
		if err != nil {
			return
		}
		if raw, ok := m[name]; ok {
			var ok bool
			if *dst, ok = jsonString(raw); !ok {
				err = fmt.Errorf("claim %s: not a string", name)
			}
		}
	}
	str("iss", &c.Issuer)
	str("sub", &c.Subject)
	str("client_id", &c.ClientID)
	clientClaim := "client_id"
	if c.ClientID == "" {
		str("azp", &c.ClientID)
		clientClaim = "azp"
	}
	if err != nil {
		return nil, err
	}
	// sub and the client id go upstream in headers: a control character (CR LF splitting a
	// header, NUL, ...) is a malformed token, never something to pass or to clean up.
	if strings.ContainsFunc(c.Subject, unicode.IsControl) {
		return nil, errors.New("claim sub: holds a control character")
	}
	if strings.ContainsFunc(c.ClientID, unicode.IsControl) {
		return nil, fmt.Errorf("claim %s: holds a control character", clientClaim)
	}
	if raw, ok := m["aud"]; ok {
		if one, ok := jsonString(raw); ok {
			c.Audience = []string{one}
		} else if e := json.Unmarshal(raw, &c.Audience); e != nil {
			return nil, errors.New("claim aud: not a string or an array of strings")
		}
	}
	for _, d := range [...]struct {
		name string
		dst  *time.Time
	}{{"exp", &c.Expiry}, {"nbf", &c.NotBefore}} {
		if raw, ok := m[d.name]; ok {
			t, e := numericDate(raw)
			if e != nil {
				return nil, fmt.Errorf("claim %s: %w", d.name, e)
			}
			*d.dst = t
		}
	}
	if c.Scopes, err = scopes(m); err != nil {
		return nil, err
	}
	if raw, ok := m["cnf"]; ok {
		cnf, e := confirmation(raw)
		if e != nil {
			return nil, e
		}
		c.Confirmation = cnf
	}
	return c, nil
}

// scopes reads scope (RFC 8693 section 4.2, RFC 9068), else scp: a space-separated string, or
// for scp also an array of scope tokens.
func scopes(m map[string]json.RawMessage) ([]string, error) {
	if raw, ok := m["scope"]; ok {
		s, ok := jsonString(raw)
		if !ok {
			return nil, errors.New("claim scope: not a string")
		}
		out, err := ParseScope(s)
		if err != nil {
			return nil, fmt.Errorf("claim scope: %w", err)
		}
		return out, nil
	}
	raw, ok := m["scp"]
	if !ok {
		return nil, nil
	}
	if s, ok := jsonString(raw); ok {
		// Azure AD writes scp as one space-separated string.
		out, err := ParseScope(s)
		if err != nil {
			return nil, fmt.Errorf("claim scp: %w", err)
		}
		return out, nil
	}
	var out []string
	if json.Unmarshal(raw, &out) != nil {
		return nil, errors.New("claim scp: not a string or an array of strings")
	}
	for i, sc := range out {
		if !ValidScope(sc) {
			return nil, fmt.Errorf("claim scp[%d]: %.100q is not an RFC 6749 scope-token", i, sc)
		}
	}
	return out, nil
}

// ErrConfirmation marks a cnf claim that is present but unusable.
var ErrConfirmation = errors.New("malformed cnf")

func confirmation(raw json.RawMessage) (*Confirmation, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return nil, fmt.Errorf("%w: not an object", ErrConfirmation)
	}
	c := &Confirmation{}
	for k := range members {
		c.Members = append(c.Members, k)
	}
	if v, ok := members["x5t#S256"]; ok {
		if c.X5tS256, ok = jsonString(v); !ok {
			return nil, fmt.Errorf("%w: x5t#S256 is not a string", ErrConfirmation)
		}
		if c.X5tS256 == "" {
			return nil, fmt.Errorf("%w: x5t#S256 is empty", ErrConfirmation)
		}
	}
	if v, ok := members["jkt"]; ok {
		if c.JKT, ok = jsonString(v); !ok {
			return nil, fmt.Errorf("%w: jkt is not a string", ErrConfirmation)
		}
		// RFC 9449 section 6.1: base64url of a SHA-256 thumbprint, so 43 characters without
		// padding; anything else can match no key.
		if b, err := base64.RawURLEncoding.Strict().DecodeString(c.JKT); err != nil || len(b) != 32 {
			return nil, fmt.Errorf("%w: jkt is not the base64url encoding, without padding, of 32 bytes", ErrConfirmation)
		}
	}
	return c, nil
}

// numericDate reads an RFC 7519 NumericDate: seconds since the epoch, possibly fractional.
func numericDate(raw json.RawMessage) (time.Time, error) {
	var f float64
	if len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		// A JSON number (raw is valid JSON): what encoding/json itself does with one.
		var err error
		if f, err = strconv.ParseFloat(string(raw), 64); err != nil {
			return time.Time{}, errors.New("not a number")
		}
	} else if err := json.Unmarshal(raw, &f); err != nil {
		return time.Time{}, errors.New("not a number")
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, errors.New("out of range")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// jsonString decodes raw, one valid JSON value, as json.Unmarshal into a string would: a
// literal of plain ASCII without escapes is copied as it is, anything else (escapes, non-ASCII,
// null) goes through encoding/json. ok is false for a value that is not a string or null.
func jsonString(raw json.RawMessage) (s string, ok bool) {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		body := raw[1 : n-1]
		if !slices.ContainsFunc(body, func(c byte) bool { return c == '\\' || c >= 0x80 }) {
			return string(body), true
		}
	}
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// ParseScope splits an RFC 6749 section 3.3 scope value: scope-token *( SP scope-token ).
// Only SP (0x20) separates; any other space or control character, an empty token (two SPs, a
// leading or trailing SP) or a character outside NQCHAR makes the value malformed, never a
// separator, so "read\u00a0admin" cannot be read as two scopes. The empty string is no scope.
func ParseScope(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	out := strings.Split(s, " ")
	for _, sc := range out {
		if !ValidScope(sc) {
			return nil, fmt.Errorf("%.100q is not scope-token *( SP scope-token ) (RFC 6749 section 3.3)", s)
		}
	}
	return out, nil
}

// ValidScope reports whether s is an RFC 6749 section 3.3 scope-token: 1*NQCHAR, where NQCHAR
// is %x21 / %x23-5B / %x5D-7E.
func ValidScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

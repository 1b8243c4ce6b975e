package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// nested is an object n levels deep: n-1 objects around an empty one.
func nested(n int) string {
	return strings.Repeat(`{"a":`, n-1) + `{}` + strings.Repeat(`}`, n-1)
}

// nestedArrays is an object holding n-1 levels of arrays.
func nestedArrays(n int) string {
	return `{"a":` + strings.Repeat(`[`, n-1) + strings.Repeat(`]`, n-1) + `}`
}

func TestParseObject(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantKeys []string
	}{
		{"empty object", `{}`, nil},
		{"claims", `{"iss":"https://as.example","exp":1700000000,"cnf":{"x5t#S256":"abc"}}`, []string{"cnf", "exp", "iss"}},
		{"whitespace around", " \n{\"a\":1}\t\r\n ", []string{"a"}},
		{"same name in sibling objects", `{"a":{"x":1},"b":{"x":2}}`, []string{"a", "b"}},
		{"same name in objects of an array", `{"a":[{"x":1},{"x":2}]}`, []string{"a"}},
		{"same name at two depths", `{"x":{"x":{"x":1}}}`, []string{"x"}},
		{"value equal to a name", `{"a":"a","b":["a","b"]}`, []string{"a", "b"}},
		{"names differing in case", `{"iss":1,"ISS":2}`, []string{"ISS", "iss"}},
		{"huge number", `{"n":1e400}`, []string{"n"}},
		{"32 levels of objects", nested(32), []string{"a"}},
		{"32 levels with arrays", nestedArrays(32), []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseObject([]byte(tt.in))
			if err != nil {
				t.Fatalf("parseObject: %v", err)
			}
			if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, tt.wantKeys) {
				t.Errorf("members %q, want %q", got, tt.wantKeys)
			}
		})
	}
}

func TestParseObjectErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		msg  string // exact error text
	}{
		{"empty", ``, "malformed JSON: EOF"},
		{"whitespace", ` `, "malformed JSON: EOF"},
		{"array", `[{"a":1}]`, "not a JSON object"},
		{"string", `"a"`, "not a JSON object"},
		{"number", `1`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"truncated", `{"a":1`, "malformed JSON: EOF"},
		{"not JSON", `{a:1}`, "malformed JSON: invalid character 'a'"},
		{"trailing object", `{}{}`, "data after the JSON object"},
		{"trailing value", `{} 1`, "data after the JSON object"},
		{"trailing close brace", `{}}`, "malformed JSON: invalid character '}' looking for beginning of value"},
		{"trailing close bracket", `{}]`, "malformed JSON: invalid character ']' looking for beginning of value"},
		{"trailing garbage", `{} x`, "malformed JSON: invalid character 'x' looking for beginning of value"},

		{"duplicate at the top", `{"iss":"a","iss":"b"}`, `duplicate member "iss"`},
		{"duplicate after other members", `{"a":1,"b":{"c":[1,{"d":2}]},"a":1}`, `duplicate member "a"`},
		{"duplicate inside cnf", `{"iss":"a","cnf":{"x5t#S256":"good","x5t#S256":"evil"}}`, `duplicate member "x5t#S256"`},
		{"duplicate inside cnf after a nested object", `{"cnf":{"jwk":{"kty":"EC"},"jkt":"a","jkt":"b"}}`, `duplicate member "jkt"`},
		{"duplicate in an object in an array", `{"a":[1,{"x":1,"x":1}]}`, `duplicate member "x"`},
		{"duplicate 30 levels down", strings.Repeat(`{"a":`, 29) + `{"b":1,"b":2}` + strings.Repeat(`}`, 29), `duplicate member "b"`},
		{"duplicate through an escape", `{"aud":"x","\u0061ud":"y"}`, `duplicate member "aud"`},
		{"duplicate through invalid UTF-8", "{\"\xff\":1,\"\xfe\":2}", "duplicate member \"\ufffd\""},
		{"duplicate empty names", `{"":1,"":2}`, `duplicate member ""`},

		{"33 levels of objects", nested(33), "JSON nested deeper than 32"},
		{"33 levels with arrays", nestedArrays(33), "JSON nested deeper than 32"},
		{"40 levels", nested(40), "JSON nested deeper than 32"},
		{"40 levels, unterminated", strings.Repeat(`{"a":[`, 20), "JSON nested deeper than 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseObject([]byte(tt.in))
			if err == nil {
				t.Fatalf("parseObject accepted it: %v", slices.Sorted(maps.Keys(m)))
			}
			if err.Error() != tt.msg {
				t.Errorf("error %q\nwant  %q", err, tt.msg)
			}
		})
	}
}

func TestNumericDate(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		msg  string // error text when rejected
	}{
		{`1700000000`, time.Unix(1700000000, 0), ""},
		{`0`, time.Unix(0, 0), ""},
		{`-0`, time.Unix(0, 0), ""},
		{`1700000000.5`, time.Unix(1700000000, 5e8), ""},
		{`1700000000.25`, time.Unix(1700000000, 25e7), ""},
		{`0.000001`, time.Unix(0, 1000), ""},
		{`1.7e9`, time.Unix(1700000000, 0), ""},
		{`1e11`, time.Unix(1e11, 0), ""},

		{`-1`, time.Time{}, "out of range"},
		{`-0.5`, time.Time{}, "out of range"},
		{`-1700000000`, time.Time{}, "out of range"},
		{`100000000001`, time.Time{}, "out of range"},
		{`1e300`, time.Time{}, "out of range"},
		{`9223372036854775807`, time.Time{}, "out of range"},
		{`1e400`, time.Time{}, "not a number"},
		{`"1700000000"`, time.Time{}, "not a number"},
		{`true`, time.Time{}, "not a number"},
		{`[1700000000]`, time.Time{}, "not a number"},
		{`{}`, time.Time{}, "not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := numericDate(json.RawMessage(tt.in))
			if tt.msg != "" {
				if err == nil || err.Error() != tt.msg {
					t.Fatalf("numericDate = %v, %v; want error %q", got, err, tt.msg)
				}
				if !got.IsZero() {
					t.Errorf("time %v returned with the error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("numericDate: %v", err)
			}
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("numericDate = %v, want %v in UTC", got, tt.want.UTC())
			}
		})
	}
}

func TestClaimsFrom(t *testing.T) {
	exp, nbf := time.Unix(1700003600, 0).UTC(), time.Unix(1699999990, 5e8).UTC()
	tests := []struct {
		name string
		in   string
		want Claims
	}{
		{"empty", `{}`, Claims{}},
		{"RFC 9068 access token",
			`{"iss":"https://as.example","sub":"u1","client_id":"c1","aud":"https://api.example","scope":"read write","exp":1700003600,"nbf":1699999990.5,"cnf":{"x5t#S256":"bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}`,
			Claims{Issuer: "https://as.example", Subject: "u1", ClientID: "c1", Audience: []string{"https://api.example"},
				Scopes: []string{"read", "write"}, Expiry: exp, NotBefore: nbf,
				Confirmation: &Confirmation{X5tS256: "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2", Members: []string{"x5t#S256"}}}},
		{"aud array", `{"aud":["a","b"]}`, Claims{Audience: []string{"a", "b"}}},
		{"aud empty array", `{"aud":[]}`, Claims{Audience: []string{}}},
		{"azp when client_id absent", `{"azp":"c2"}`, Claims{ClientID: "c2"}},
		{"client_id wins over azp", `{"azp":"c2","client_id":"c1"}`, Claims{ClientID: "c1"}},
		{"scp array when scope absent", `{"scp":["read","write"]}`, Claims{Scopes: []string{"read", "write"}}},
		{"scp as one space-separated string (Azure AD)", `{"scp":"read write"}`, Claims{Scopes: []string{"read", "write"}}},
		{"scope wins over scp", `{"scope":"admin","scp":["read"]}`, Claims{Scopes: []string{"admin"}}},
		{"scope wins over an scp of the wrong type", `{"scope":"admin","scp":7}`, Claims{Scopes: []string{"admin"}}},
		{"empty scope", `{"scope":""}`, Claims{}},
		{"scp string", `{"scp":"read write"}`, Claims{Scopes: []string{"read", "write"}}},
		{"scope of every NQCHAR class", `{"scope":"!#[]~ a"}`, Claims{Scopes: []string{"!#[]~", "a"}}},
		{"cnf bound by DPoP", `{"cnf":{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}`, Claims{Confirmation: &Confirmation{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", Members: []string{"jkt"}}}},
		{"cnf bound by another method", `{"cnf":{"jwk":{"kty":"EC"}}}`, Claims{Confirmation: &Confirmation{Members: []string{"jwk"}}}},
		{"cnf with several members", `{"cnf":{"x5t#S256":"t","jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}`, Claims{Confirmation: &Confirmation{X5tS256: "t", JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", Members: []string{"jkt", "x5t#S256"}}}},
		{"empty cnf", `{"cnf":{}}`, Claims{Confirmation: &Confirmation{}}},
		{"unknown claims ignored", `{"acr":1,"x":{"y":[1]}}`, Claims{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseObject([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			got, err := claimsFrom(m)
			if err != nil {
				t.Fatalf("claimsFrom: %v", err)
			}
			if got.Confirmation != nil {
				slices.Sort(got.Confirmation.Members)
			}
			if !claimsEqual(got, &tt.want) {
				t.Errorf("claims\n got %+v %+v\nwant %+v %+v", *got, got.Confirmation, tt.want, tt.want.Confirmation)
			}
		})
	}
}

func claimsEqual(a, b *Claims) bool {
	if (a.Confirmation == nil) != (b.Confirmation == nil) {
		return false
	}
	if a.Confirmation != nil && (a.Confirmation.X5tS256 != b.Confirmation.X5tS256 || a.Confirmation.JKT != b.Confirmation.JKT ||
		!slices.Equal(a.Confirmation.Members, b.Confirmation.Members)) {
		return false
	}
	return a.Issuer == b.Issuer && a.Subject == b.Subject && a.ClientID == b.ClientID &&
		slices.Equal(a.Audience, b.Audience) && (a.Audience == nil) == (b.Audience == nil) &&
		slices.Equal(a.Scopes, b.Scopes) && (a.Scopes == nil) == (b.Scopes == nil) &&
		a.Expiry.Equal(b.Expiry) && a.NotBefore.Equal(b.NotBefore)
}

func TestClaimsFromErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		is   error  // errors.Is target, or nil
		msg  string // exact error text
	}{
		{"iss a number", `{"iss":1}`, nil, "claim iss: not a string"},
		{"sub an object", `{"sub":{}}`, nil, "claim sub: not a string"},
		{"client_id an array", `{"client_id":["c"]}`, nil, "claim client_id: not a string"},
		{"azp a bool", `{"azp":true}`, nil, "claim azp: not a string"},
		{"aud a number", `{"aud":1}`, nil, "claim aud: not a string or an array of strings"},
		{"aud an object", `{"aud":{"a":"b"}}`, nil, "claim aud: not a string or an array of strings"},
		{"aud an array of numbers", `{"aud":["a",1]}`, nil, "claim aud: not a string or an array of strings"},
		{"aud an array of arrays", `{"aud":[["a"]]}`, nil, "claim aud: not a string or an array of strings"},
		{"exp a string", `{"exp":"1700000000"}`, nil, "claim exp: not a number"},
		{"exp negative", `{"exp":-1}`, nil, "claim exp: out of range"},
		{"exp huge", `{"exp":1e300}`, nil, "claim exp: out of range"},
		{"nbf a bool", `{"nbf":false}`, nil, "claim nbf: not a number"},
		{"scope an array", `{"scope":["read"]}`, nil, "claim scope: not a string"},
		{"scp with a number", `{"scp":["read",1]}`, nil, "claim scp: not a string or an array of strings"},
		// RFC 6749 section 3.3: only SP separates scope tokens.
		{"scope split by NBSP", `{"scope":"read\u00a0admin"}`, nil, `claim scope: "read\u00a0admin" is not scope-token *( SP scope-token ) (RFC 6749 section 3.3)`},
		{"scope split by TAB", `{"scope":"read\tadmin"}`, nil, `claim scope: "read\tadmin" is not scope-token *( SP scope-token ) (RFC 6749 section 3.3)`},
		{"scope split by LF", `{"scope":"read\nadmin"}`, nil, `claim scope: "read\nadmin" is not scope-token *( SP scope-token ) (RFC 6749 section 3.3)`},
		{"scope split by EM SPACE", `{"scope":"read\u2003admin"}`, nil, `claim scope: "read\u2003admin" is not scope-token *( SP scope-token ) (RFC 6749 section 3.3)`},
		{"scope split by NEL", `{"scope":"read\u0085admin"}`, nil, `claim scope: "read\u0085admin" is not scope-token *( SP scope-token ) (RFC 6749 section 3.3)`},
		{"scope with two SPs", `{"scope":"read  admin"}`, nil, `claim scope: "read  admin" is not scope-token *( SP scope-token ) (RFC 6749 section 3.3)`},
		{"scope with a trailing SP", `{"scope":"read "}`, nil, `claim scope: "read " is not scope-token *( SP scope-token ) (RFC 6749 section 3.3)`},
		{"scope with a quote", `{"scope":"re\"ad"}`, nil, `claim scope: "re\"ad" is not scope-token *( SP scope-token ) (RFC 6749 section 3.3)`},
		{"scp string split by TAB", `{"scp":"read\tadmin"}`, nil, `claim scp: "read\tadmin" is not scope-token *( SP scope-token ) (RFC 6749 section 3.3)`},
		{"scp array with a space inside", `{"scp":["read admin"]}`, nil, `claim scp[0]: "read admin" is not an RFC 6749 scope-token`},
		// sub and client_id go upstream in headers.
		{"sub with CR LF", `{"sub":"billing\r\nx-certbind-client-id: admin"}`, nil, "claim sub: holds a control character"},
		{"sub with NUL", `{"sub":"a\u0000"}`, nil, "claim sub: holds a control character"},
		{"sub with a C1 control", `{"sub":"a\u009b"}`, nil, "claim sub: holds a control character"},
		{"client_id with LF", `{"client_id":"billing\nadmin"}`, nil, "claim client_id: holds a control character"},
		{"azp with DEL", `{"azp":"billing\u007f"}`, nil, "claim azp: holds a control character"},
		{"cnf a string", `{"cnf":"x"}`, ErrConfirmation, "malformed cnf: not an object"},
		{"cnf null", `{"cnf":null}`, ErrConfirmation, "malformed cnf: not an object"},
		{"cnf an array", `{"cnf":[{"x5t#S256":"t"}]}`, ErrConfirmation, "malformed cnf: not an object"},
		{"x5t#S256 a number", `{"cnf":{"x5t#S256":1}}`, ErrConfirmation, "malformed cnf: x5t#S256 is not a string"},
		{"x5t#S256 empty", `{"cnf":{"x5t#S256":""}}`, ErrConfirmation, "malformed cnf: x5t#S256 is empty"},
		{"x5t#S256 null", `{"cnf":{"x5t#S256":null}}`, ErrConfirmation, "malformed cnf: x5t#S256 is empty"},
		// RFC 9449 section 6.1: jkt is a base64url SHA-256 thumbprint.
		{"jkt a number", `{"cnf":{"jkt":1}}`, ErrConfirmation, "malformed cnf: jkt is not a string"},
		{"jkt empty", `{"cnf":{"jkt":""}}`, ErrConfirmation, "malformed cnf: jkt is not the base64url encoding, without padding, of 32 bytes"},
		{"jkt padded", `{"cnf":{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I="}}`, ErrConfirmation, "malformed cnf: jkt is not the base64url encoding, without padding, of 32 bytes"},
		{"jkt standard base64", `{"cnf":{"jkt":"0ZcOCORZNYy+DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}`, ErrConfirmation, "malformed cnf: jkt is not the base64url encoding, without padding, of 32 bytes"},
		{"jkt of SHA-1 length", `{"cnf":{"jkt":"3q2-7wAAAAAAAAAAAAAAAAAAAAA"}}`, ErrConfirmation, "malformed cnf: jkt is not the base64url encoding, without padding, of 32 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseObject([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			c, err := claimsFrom(m)
			if err == nil {
				t.Fatalf("claimsFrom accepted it: %+v", *c)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if err.Error() != tt.msg {
				t.Errorf("error %q, want %q", err, tt.msg)
			}
		})
	}
}

// shape walks JSON independently of checkJSON, decoding each member's value whole and recursing:
// it reports a name repeated within one object, and the deepest nesting of objects and arrays.
func shape(raw []byte, depth int) (dup bool, deepest int, err error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return false, 0, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return false, depth, nil
	}
	deepest = depth + 1
	seen := map[string]bool{}
	for dec.More() {
		if d == '{' {
			tok, err := dec.Token()
			if err != nil {
				return false, 0, err
			}
			name := tok.(string)
			dup = dup || seen[name]
			seen[name] = true
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return false, 0, err
		}
		dd, vd, err := shape(v, depth+1)
		if err != nil {
			return false, 0, err
		}
		dup, deepest = dup || dd, max(deepest, vd)
	}
	return dup, deepest, nil
}

// FuzzParseObject checks that parseObject accepts exactly the JSON objects encoding/json accepts
// that have no duplicate member name anywhere and nest at most maxDepth deep, and that it returns
// the same members.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"iss":"https://as.example","sub":"u","aud":["a","b"],"exp":1700000000.5,"scope":"a b","cnf":{"x5t#S256":"bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}`,
		`{"active":true,"client_id":"c","token_type":"Bearer","exp":1700000000,"cnf":{"x5t#S256":"x"}}`,
		`{"active":false}`,
		`{"alg":"ES256","typ":"at+jwt","kid":"k1"}`,
		`{"iss":"a","iss":"b"}`,
		`{"cnf":{"x5t#S256":"a","x5t#S256":"b"}}`,
		`{"a":[{"x":1},{"x":1,"x":2}]}`,
		`{"aud":"x","\u0061ud":"y"}`,
		"{\"\xff\":1,\"\xfe\":2}",
		`{"a":"\ud800"}`,
		`{} {}`,
		`{}}`,
		`[{}]`,
		`{"n":1e400,"m":-0.0e-0}`,
		nested(32), nested(33), nestedArrays(32), nestedArrays(33),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseObject(data)

		// What encoding/json, independently, makes of the same bytes.
		var std map[string]any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		stdErr := dec.Decode(&std)
		if stdErr == nil {
			if _, e := dec.Token(); e != io.EOF {
				stdErr = errors.New("trailing data")
			}
		}
		valid := json.Valid(data) && stdErr == nil && std != nil
		var dup bool
		var deepest int
		if valid {
			var e error
			if dup, deepest, e = shape(data, 0); e != nil {
				t.Fatalf("shape of valid JSON: %v", e)
			}
		}

		if err != nil {
			if m != nil {
				t.Fatalf("members returned with error %v", err)
			}
			if valid && !dup && deepest <= maxDepth {
				t.Fatalf("rejected an object encoding/json accepts, without duplicates, %d deep: %v", deepest, err)
			}
			return
		}
		if !valid {
			t.Fatalf("accepted what encoding/json rejects (%v)", stdErr)
		}
		if dup {
			t.Fatal("accepted a duplicate member")
		}
		if deepest > maxDepth {
			t.Fatalf("accepted nesting %d deep", deepest)
		}
		if got, want := slices.Sorted(maps.Keys(m)), slices.Sorted(maps.Keys(std)); !slices.Equal(got, want) {
			t.Fatalf("members %q, encoding/json has %q", got, want)
		}
		// Each value exactly as encoding/json's own RawMessage decoding has it.
		var raws map[string]json.RawMessage
		if err := json.Unmarshal(data, &raws); err != nil {
			t.Fatalf("encoding/json into RawMessages: %v", err)
		}
		for k, raw := range m {
			if !bytes.Equal(raw, raws[k]) {
				t.Fatalf("member %q is %q, encoding/json has %q", k, raw, raws[k])
			}
		}
	})
}

// FuzzParseScope: no panic; an accepted value is exactly its tokens joined by single SPs,
// each an RFC 6749 scope-token; a value with any byte outside NQCHAR and SP is refused.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"read write", "read\u00a0admin", "read\tadmin", "", " ", "a  b", "!#[]~", "re\"ad"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseScope(s)
		bad := strings.ContainsFunc(s, func(r rune) bool { return r != ' ' && (r < 0x21 || r == '"' || r == '\\' || r > 0x7e) })
		if err != nil {
			if got != nil {
				t.Fatalf("%q: error %v with scopes %q", s, err, got)
			}
			return
		}
		if bad {
			t.Fatalf("%q accepted as %q", s, got)
		}
		if strings.Join(got, " ") != s {
			t.Fatalf("%q -> %q", s, got)
		}
		for _, sc := range got {
			if !ValidScope(sc) {
				t.Fatalf("%q -> token %q", s, sc)
			}
		}
	})
}

// FuzzClaimValues holds jsonString and numericDate, which skip encoding/json for plain values,
// to what encoding/json makes of any valid JSON value.
func FuzzClaimValues(f *testing.F) {
	for _, s := range []string{`"a"`, `""`, `"\u0061"`, `"a\"b"`, "\"\xff\"", `"é"`, `null`, `1`, `-0`, `1e400`, `1.5e9`, `"1"`, `[]`, `{}`, `true`, ` "a" `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		raw := trimRightSpace(data[skipSpace(data, 0):]) // a value as parseObject cuts it
		var want string
		wantErr := json.Unmarshal(raw, &want)
		got, ok := jsonString(raw)
		if ok != (wantErr == nil) || got != want {
			t.Fatalf("jsonString(%q) = %q, %v; encoding/json: %q, %v", raw, got, ok, want, wantErr)
		}
		var f float64
		fErr := json.Unmarshal(raw, &f)
		tm, err := numericDate(raw)
		if fErr != nil {
			if err == nil {
				t.Fatalf("numericDate(%q) = %v, encoding/json: %v", raw, tm, fErr)
			}
			return
		}
		if inRange := f >= 0 && f <= 1e11; inRange != (err == nil) {
			t.Fatalf("numericDate(%q): %v, for %v", raw, err, f)
		}
		if err == nil {
			sec, frac := math.Modf(f)
			if want := time.Unix(int64(sec), int64(frac*1e9)).UTC(); !tm.Equal(want) {
				t.Fatalf("numericDate(%q) = %v, want %v", raw, tm, want)
			}
		}
	})
}

package policy_test

import (
	"strings"
	"testing"

	"github.com/certbind/certbind/policy"
)

func TestCanonicalHost(t *testing.T) {
	tests := []struct {
		in, want string
		bad      string // a substring of the error when the authority is malformed
	}{
		{"admin.example.org", "admin.example.org", ""},
		{"Admin.Example.ORG", "admin.example.org", ""},
		{"admin.example.org.", "admin.example.org", ""},
		{"admin.example.org.:443", "admin.example.org", ""},
		{"ADMIN.example.org.:8443", "admin.example.org", ""},
		{"admin.example.org:", "admin.example.org", ""},
		{"svc_internal.example", "svc_internal.example", ""},
		{"192.0.2.1:80", "192.0.2.1", ""},
		{"[2001:DB8::1]:443", "[2001:db8::1]", ""},
		{"[2001:db8:0:0:0:0:0:1]", "[2001:db8::1]", ""},
		{"", "", ""},
		{"admin.example.org..", "", "empty label"},
		{".admin.example.org", "", "empty label"},
		{".", "", "empty or too long"},
		{":443", "", "empty or too long"},
		{"admin.example.org:https", "", "bad port"},
		{"admin.example.org:4430000", "", "bad port"},
		{"admin.example.org:443:443", "", "character ':'"},
		{"admin%2Eexample.org", "", "character '%'"},
		{"admin.example.org\x00", "", `character '\x00'`},
		{"user@admin.example.org", "", "character '@'"},
		{"admin.example.org/x", "", "character '/'"},
		{"admin example.org", "", "character ' '"},
		{"[::1", "", "unclosed '['"},
		{"[::1]x", "", "text after ']'"},
		{"[192.0.2.1]", "", "bad IPv6 literal"},
		{"[fe80::1%25eth0]", "", "bad IPv6 literal"},
		{strings.Repeat("a", 254), "", "empty or too long"},
	}
	for _, tc := range tests {
		got, err := policy.CanonicalHost(tc.in)
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("CanonicalHost(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.bad)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("CanonicalHost(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzCanonicalHost: no panic; an accepted authority canonicalizes to a fixed point that is
// lower case, without port or trailing dot; the same name with a port, a trailing dot or in
// upper case canonicalizes to the same host.
func FuzzCanonicalHost(f *testing.F) {
	for _, s := range []string{"admin.example.org", "admin.example.org.:443", "[::1]:80", "192.0.2.1", "a..b", "[", "x:y", "A.B."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, err := policy.CanonicalHost(in)
		if err != nil {
			if h != "" {
				t.Fatalf("error %v with host %q", err, h)
			}
			return
		}
		if again, err := policy.CanonicalHost(h); err != nil || again != h {
			t.Fatalf("%q -> %q -> %q, %v: not a fixed point", in, h, again, err)
		}
		if h == "" {
			if in != "" {
				t.Fatalf("%q accepted as no host", in)
			}
			return
		}
		if strings.HasSuffix(h, ".") || strings.ToLower(h) != h || (h[0] != '[' && strings.Contains(h, ":")) {
			t.Fatalf("%q -> %q: not canonical", in, h)
		}
		for _, v := range []string{strings.ToUpper(h) + ":443", h + ".", h + ".:8443"} {
			if h[0] == '[' && strings.HasPrefix(v, h+".") {
				continue
			}
			if got, err := policy.CanonicalHost(v); err != nil || got != h {
				t.Fatalf("%q -> %q, %v; want %q", v, got, err, h)
			}
		}
	})
}

func TestRouteWarnings(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		name, routes string
		want         []string
	}{
		{"trailing-slash prefix shadowed by a broader one", "  - {path_prefix: /api/admin/, mode: identity}\n  - {path_prefix: /api/, mode: identity}\n",
			[]string{`routes[0].path_prefix: "/api/admin/" does not cover "/api/admin", which falls to routes[1] (path_prefix "/api/", mode identity); path_separated_prefix: /api/admin covers the path and everything below it`}},
		{"shadowed by the catch-all", "  - {path_prefix: /admin/, mode: identity}\n  - {mode: identity}\n",
			[]string{`routes[0].path_prefix: "/admin/" does not cover "/admin", which falls to routes[1] (path_prefix "/", mode identity)`}},
		{"separated prefix", "  - {path_separated_prefix: /api/admin, mode: identity}\n  - {path_prefix: /api/, mode: identity}\n", nil},
		{"no broader route", "  - {path_prefix: /api/admin/, mode: identity}\n  - {path_prefix: /other/, mode: identity}\n", nil},
		{"broader route for another host", "  - {host: a.example, path_prefix: /api/admin/, mode: identity}\n  - {host: b.example, path_prefix: /api/, mode: identity}\n", nil},
		{"broader route for any host", "  - {host: a.example, path_prefix: /api/admin/, mode: identity}\n  - {path_prefix: /api/, mode: identity}\n",
			[]string{`routes[0].path_prefix: "/api/admin/" does not cover "/api/admin", which falls to routes[1]`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := w.load(t, "routes:\n"+tc.routes).Warnings()
			if len(got) != len(tc.want) {
				t.Fatalf("warnings %q, want %d", got, len(tc.want))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("warning %q\nwant prefix %q", got[i], tc.want[i])
				}
			}
		})
	}
}

// TestFormBodyLimit: client_auth.max_form_bytes bounds the form body parsed for client_id.
func TestFormBodyLimit(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, exampleConfig+"client_auth: {max_form_bytes: 64}\n")
	for _, tc := range []struct {
		pad  int
		want policy.Reason
	}{{0, policy.ReasonOK}, {64, policy.ReasonRequestMalformed}} {
		r := tokenRequest("billing")
		r.Body = append(r.Body, "&x="+strings.Repeat("a", tc.pad)...)
		d := decide(e, policy.Input{Request: r, Certificate: presented(t, w.billing)})
		if d.Reason != tc.want {
			t.Fatalf("%d-byte body: %s (%v), want %s", len(r.Body), d.Reason, d.Cause, tc.want)
		}
		if tc.want != policy.ReasonOK && !strings.Contains(d.Cause.Error(), "over client_auth.max_form_bytes (64)") {
			t.Errorf("cause %v", d.Cause)
		}
	}
}

package policy

import (
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// clientIndex finds the registered clients a certificate can belong to without trying every
// one: identity mode (and bound_token's require_client_match) would otherwise compare the
// certificate with each of 100,000 registrations. Every tls_client_auth client is filed under
// the key of its registered name; a certificate's keys are those of its subject and SANs. Two
// names share a key exactly when the client's matcher accepts the certificate's name (the
// subject DN by dn.Name.Key, DNS names and URI schemes and hosts folded to ASCII lower case, IP
// addresses in binary), so the candidates are the clients whose names match, in registration
// order. self_signed_tls_client_auth clients (pinned by a key set that can change) are always
// candidates.
type clientIndex struct {
	// byName maps a key to the index in Config.clients of the first client filed under it;
	// more holds the others, ascending, for the rare key several clients share. (One int32
	// per client, not a slice: a registry of 100,000 is 100,000 fewer objects to collect.)
	byName map[string]int32
	more   map[string][]int32
	always []int32 // clients tried for every certificate
}

func newClientIndex(clients []*Client) clientIndex {
	x := clientIndex{byName: make(map[string]int32, len(clients)), more: map[string][]int32{}}
	for i, cl := range clients {
		if cl.Method != MethodPKI {
			x.always = append(x.always, int32(i))
			continue
		}
		k := cl.match.key()
		if _, dup := x.byName[k]; dup {
			x.more[k] = append(x.more[k], int32(i))
			continue
		}
		x.byName[k] = int32(i)
	}
	return x
}

// candidates returns the indexes of the clients p can belong to, ascending, appended to buf.
func (x clientIndex) candidates(p *Presented, buf []int32) []int32 {
	out := append(buf, x.always...)
	add := func(k string) {
		if i, ok := x.byName[k]; ok {
			out = append(append(out, i), x.more[k]...)
		}
	}
	if p.SubjectErr == nil {
		add(p.subjectKey())
	}
	for _, n := range p.Leaf.DNSNames {
		add(dnsKey(n))
	}
	for _, k := range p.uriKeys() {
		add(k)
	}
	for _, ip := range p.Leaf.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			add(ipKey(a))
		}
	}
	for _, e := range p.Leaf.EmailAddresses {
		if local, domain, ok := strings.Cut(e, "@"); ok {
			add(emailKey(local, domain))
		}
	}
	slices.Sort(out[len(buf):])
	return slices.Compact(out)
}

// The keys of each name form; a prefix keeps the forms apart.
func dnsKey(name string) string { return "dns\x00" + asciiLower(name) }
func ipKey(a netip.Addr) string { return "ip\x00" + string(a.AsSlice()) }
func emailKey(local, domain string) string {
	return "email\x00" + local + "@" + asciiLower(domain)
}

// uriKeyOf holds every part of u that RFC 5280 section 7.4 compares: scheme and host folded to
// ASCII lower case, the user information, opaque part, escaped path, query and fragment as they
// are. Each part is separated by a NUL, which none can hold (url.Parse refuses control
// characters, and registrations with a NUL are refused).
func uriKeyOf(u *url.URL) string {
	fq := "0"
	if u.ForceQuery {
		fq = "1"
	}
	return strings.Join([]string{"uri", asciiLower(u.Scheme), asciiLower(u.Host), u.Opaque, u.User.String(), u.EscapedPath(), u.RawQuery, fq, u.EscapedFragment()}, "\x00")
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func (m subjectMatcher) key() string { return m.k }
func (m dnsMatcher) key() string     { return dnsKey(m.name) }
func (m ipMatcher) key() string      { return ipKey(m.addr) }
func (m emailMatcher) key() string   { return emailKey(m.local, m.domain) }
func (m uriMatcher) key() string     { return m.k }

package dn

import (
	"unicode"
	"unicode/utf8"
)

// equal compares two decoded values under r.
//
// caseIgnoreMatch and caseIgnoreIA5Match prepare both strings as RFC 4518
// does, narrowed so that preparation can only make fewer strings equal:
//   - insignificant space handling (§2.6.1) on U+0020 only: leading and
//     trailing spaces dropped, each inner run collapsed to one space. TAB,
//     LF, CR, NBSP and other separators are ordinary characters; RFC 4518
//     §2.2 would map them to SPACE.
//   - no characters are mapped to nothing (soft hyphen, zero-width space)
//     and there is no NFKC: "ｆｏｏ" is not "foo".
//   - case folding (caseIgnoreMatch): ASCII letters fold to lower case;
//     a non-ASCII rune folds to the smallest non-ASCII member of its simple
//     case folding orbit (unicode.SimpleFold). Folding never crosses the
//     ASCII boundary, so KELVIN SIGN (U+212A) is not "k" and LATIN SMALL
//     LETTER LONG S (U+017F) is not "s", although strings.EqualFold says
//     they are. Full folding (ß vs "ss") is not applied.
//   - caseIgnoreIA5Match folds ASCII letters only; other runes compare
//     exactly.
//
// Both preparations map each string to a key and compare keys, so equal is
// an equivalence relation.
func (r rule) equal(a, b string) bool {
	if a == b {
		return true
	}
	if r == exactMatch {
		return false
	}
	x, y := prepare(a, r), prepare(b, r)
	for {
		c, d := x.next(), y.next()
		if c != d {
			return false
		}
		if c < 0 {
			return true
		}
	}
}

// prepared iterates over the runes of a value after preparation.
type prepared struct {
	s    string
	i    int
	fold bool // fold non-ASCII runes
}

func prepare(s string, r rule) prepared {
	i := 0
	for i < len(s) && s[i] == ' ' {
		i++
	}
	return prepared{s: s, i: i, fold: r == caseIgnoreMatch}
}

// next returns the next prepared rune, or -1 at the end.
func (p *prepared) next() rune {
	if p.i >= len(p.s) {
		return -1
	}
	c := p.s[p.i]
	if c == ' ' {
		for p.i < len(p.s) && p.s[p.i] == ' ' {
			p.i++
		}
		if p.i == len(p.s) {
			return -1 // trailing spaces are insignificant
		}
		return ' '
	}
	if c < utf8.RuneSelf {
		p.i++
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		return rune(c)
	}
	r, n := utf8.DecodeRuneInString(p.s[p.i:])
	p.i += n
	if p.fold {
		r = foldNonASCII(r)
	}
	return r
}

// foldNonASCII returns the smallest non-ASCII rune in r's simple case
// folding orbit, r itself if there is none.
func foldNonASCII(r rune) rune {
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f >= utf8.RuneSelf && f < m {
			m = f
		}
	}
	return m
}

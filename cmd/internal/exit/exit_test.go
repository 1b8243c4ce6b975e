package exit

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestCode(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   int
		stderr string
	}{
		{nil, 0, ""},
		{errors.New("boom"), 1, "prog: boom\n"},
		{Usage("bad flag %q", "x"), 2, "prog: bad flag \"x\"\n"},
		{&Error{Code: 0}, 0, ""},
		{&Error{Code: 1}, 1, ""},
		{fmt.Errorf("wrapped: %w", &Error{Code: 2, Err: errors.New("inner")}), 2, "prog: inner\n"},
	} {
		var b bytes.Buffer
		if got := Code(tc.err, &b, "prog"); got != tc.code || b.String() != tc.stderr {
			t.Errorf("Code(%v) = %d, %q; want %d, %q", tc.err, got, b.String(), tc.code, tc.stderr)
		}
	}
}

// Package exit carries a command's exit code in its error, so a command's run function returns
// errors and only main turns them into a process exit.
package exit

import (
	"errors"
	"fmt"
	"io"
)

// Error ends a command with Code; Err, when set, is printed.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Usage is exit code 2 with a message: invalid flags, arguments or configuration.
func Usage(format string, args ...any) error {
	return &Error{Code: 2, Err: fmt.Errorf(format, args...)}
}

// Code prints err (as "prog: message") to stderr and returns the exit code it carries: 0 for
// nil, the Error's code, 1 for any other error.
func Code(err error, stderr io.Writer, prog string) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Err != nil {
			fmt.Fprintln(stderr, prog+":", e.Err)
		}
		return e.Code
	}
	fmt.Fprintln(stderr, prog+":", err)
	return 1
}

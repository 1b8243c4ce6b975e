// Command certbind is an Envoy external authorization server that authenticates clients by
// their mutual-TLS certificate (RFC 8705).
//
//	certbind serve --config certbind.yaml [--grpc-addr :9191] [--http-addr ADDR] [--admin-addr ADDR] [TLS flags]
//	certbind check --config certbind.yaml --cert client.pem [--chain chain.pem] [--client-id ID] [--mode MODE] [--token T | --token-file F] [--path P]
//	certbind thumbprint client.pem
//	certbind validate --config certbind.yaml --envoy envoy.yaml
//
// 'certbind COMMAND -h' lists a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitError carries a process exit code: 1 for a deny from `check`, 2 for invalid input or
// configuration.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// parseFlags parses a command's flags: -h prints them and stops with exit 0, a bad flag with 2.
func parseFlags(fs *flag.FlagSet, args []string) error {
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		return &exitError{code: 0}
	case err != nil:
		return &exitError{code: 2}
	}
	return nil
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "certbind:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "certbind:", err)
	return 1
}

const usage = `certbind: Envoy ext_authz for mutual-TLS client authentication (RFC 8705)

Usage:
  certbind serve      --config FILE [--grpc-addr ADDR] [--http-addr ADDR] [--admin-addr ADDR]
                      [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM [--allowed-callers IDS]]]
  certbind check      --config FILE --cert PEM [--chain PEM] [--client-id ID] [--mode MODE]
                      [--token TOKEN | --token-file FILE] [--path PATH]
  certbind thumbprint PEM
  certbind validate   [--config FILE] [--envoy ENVOY.yaml]

Run 'certbind COMMAND -h' for a command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "check":
		return check(ctx, args[1:], stdout, stderr)
	case "thumbprint":
		return thumbprint(args[1:], stdout, stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError("unknown command %q", args[0])
}

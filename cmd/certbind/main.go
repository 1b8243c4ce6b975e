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
	"github.com/certbind/certbind/cmd/internal/exit"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exit.Code(err, os.Stderr, "certbind"))
}

// parseFlags parses a command's flags: -h prints them and stops with exit 0, a bad flag with 2.
func parseFlags(fs *flag.FlagSet, args []string) error {
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		return &exit.Error{Code: 0}
	case err != nil:
		return &exit.Error{Code: 2}
	}
	return nil
}

const usage = `certbind: Envoy ext_authz for mutual-TLS client authentication (RFC 8705)

Usage:
  certbind serve      --config FILE [--grpc-addr ADDR] [--http-addr ADDR] [--admin-addr ADDR]
                      [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM [--allowed-callers IDS]]]
                      [--http-read-timeout D] [--http-write-timeout D] [--http-idle-timeout D]
                      [--http-max-conns N]
  certbind check      --config FILE --cert PEM [--chain PEM] [--client-id ID] [--mode MODE]
                      [--token TOKEN | --token-file FILE] [--path PATH]
  certbind thumbprint PEM
  certbind validate   [--config FILE] [--envoy ENVOY.yaml]

Run 'certbind COMMAND -h' for a command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exit.Error{Code: 2}
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
	return exit.Usage("unknown command %q", args[0])
}

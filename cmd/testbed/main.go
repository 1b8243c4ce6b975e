package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/certbind/certbind/cmd/internal/exit"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // a second signal kills at once
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exit.Code(err, os.Stderr, "testbed"))
}

// command is one subcommand. To add one, add it to commands.
type command struct {
	name    string
	usage   string // flags, after the name
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"pki", "--out DIR [--valid 24h]", "write a fresh test PKI (testenv/testbed layout)", runPKI},
		{"as", "--pki DIR [--addr :8080] [--issuer URL] [--audience URL] [--token-ttl 5m]",
			"serve the demo authorization server (behind Envoy and certbind only)", runAS},
		{"api", "[--addr :8080]", "serve the demo API: echoes every request as JSON", runAPI},
	}
}

func usage() string {
	var b strings.Builder
	b.WriteString("testbed: the test bed's PKI, demo authorization server and demo API\n\nUsage:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  testbed %-4s %s\n         %s\n", c.name, c.usage, c.summary)
	}
	b.WriteString("\nRun 'testbed COMMAND -h' for a command's flags.\n")
	return b.String()
}

// env is what subcommands use from the outside world; tests substitute parts of it.
type env struct {
	stdout, stderr io.Writer
	log            *logrus.Logger
	now            func() time.Time
	// listen opens a server subcommand's listener.
	listen func(addr string) (net.Listener, error)
	// ready, when set, is called with the bound address once a server accepts connections
	// (the address is also logged, for --addr with port 0).
	ready func(net.Addr)
}

func newEnv(stdout, stderr io.Writer) *env {
	log := logrus.New()
	log.SetOutput(stderr)
	log.SetFormatter(&logrus.JSONFormatter{})
	return &env{stdout: stdout, stderr: stderr, log: log, now: time.Now,
		listen: func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runEnv(ctx, newEnv(stdout, stderr), args)
}

func runEnv(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage())
		return &exit.Error{Code: 2}
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, usage())
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if err := c.run(ctx, e, args[1:]); !errors.Is(err, errHelp) {
				return err
			}
			return nil
		}
	}
	fmt.Fprint(e.stderr, usage())
	return exit.Usage("unknown command %q", args[0])
}

// parseFlags parses a subcommand's flags; -h prints them and ends the command successfully
// (errHelp), anything else wrong is a usage error.
func parseFlags(fs *flag.FlagSet, e *env, args []string) error {
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return &exit.Error{Code: 2} // the flag package has printed the problem
	}
	if fs.NArg() > 0 {
		return exit.Usage("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// errHelp ends a command after -h.
var errHelp = errors.New("help requested")

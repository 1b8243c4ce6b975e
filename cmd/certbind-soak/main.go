// Command certbind-soak is `make soak`: a sustained mixed workload through the in-process test
// bed, every answer checked (see package testenv/soak). Exit 1 on any wrong decision, leak or
// memory growth.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/certbind/certbind/testenv/soak"
)

func main() {
	d := flag.Duration("duration", 10*time.Minute, "how long to run")
	w := flag.Int("workers", 16, "concurrent clients")
	restarts := flag.Int("restarts", 0, "restart certbind this many times during the run")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Printf("soak: %s with %d workers through the Envoy stand-in\n", *d, *w)
	rep, err := soak.Run(ctx, soak.Options{Duration: *d, Workers: *w, Restarts: *restarts, Window: 30 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	rep.Print(os.Stdout)
	if !rep.OK() {
		os.Exit(1)
	}
}

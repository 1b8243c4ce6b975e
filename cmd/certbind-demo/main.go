// Command certbind-demo is `make demo`: the whole certbind flow on this machine, on embedded
// defaults, with no Docker and no Envoy (see package testenv/demo).
package main

import (
	"fmt"
	"os"

	"github.com/certbind/certbind/testenv/demo"
)

func main() {
	fmt.Println("certbind demo: test PKI, certbind, Envoy stand-ins (envoy/envoy.yaml), demo authorization server and API on 127.0.0.1")
	fmt.Println()
	if _, err := demo.Run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

package demo_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/certbind/certbind/testenv/demo"
)

// The demo is also the end-to-end test through the Envoy stand-in: every step must go as
// scripted.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	steps, err := demo.Run(&out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(steps) < 15 {
		t.Fatalf("%d steps", len(steps))
	}
	if !strings.Contains(out.String(), "passed, 0 failed") {
		t.Fatalf("summary missing:\n%s", out.String())
	}
}

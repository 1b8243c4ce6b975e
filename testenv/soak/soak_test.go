package soak_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/testenv/soak"
)

// duration: SOAK_DURATION (CI sets 30s); a short run otherwise, so `make test` stays quick.
func duration(t *testing.T, def time.Duration) time.Duration {
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SOAK_DURATION: %v", err)
		}
		return d
	}
	return def
}

func TestSoak(t *testing.T) {
	rep, err := soak.Run(context.Background(), soak.Options{Duration: duration(t, 3*time.Second), Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.Print(&b)
	t.Log("\n" + b.String())
	if !rep.OK() {
		t.Fatal(strings.Join(rep.Problems(), "; "))
	}
	for name, n := range rep.ByCase {
		if n == 0 {
			t.Errorf("case %q never ran", name)
		}
	}
}

// TestRestartUnderLoad restarts certbind while the stand-in keeps sending: requests then get
// Envoy's status_on_error (503), and no request that must be denied is ever allowed.
func TestRestartUnderLoad(t *testing.T) {
	rep, err := soak.Run(context.Background(), soak.Options{Duration: duration(t, 4*time.Second), Window: time.Second, Restarts: 2})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.Print(&b)
	t.Log("\n" + b.String())
	if rep.WrongAllows != 0 || rep.Wrong != 0 {
		t.Fatalf("%d wrong decisions, %d wrong allows", rep.Wrong, rep.WrongAllows)
	}
}

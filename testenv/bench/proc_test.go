package bench

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr error
	}{
		{
			name: "plain",
			stat: "4242 (certbind) S 1 4242 4242 0 -1 4194560 5273 0 0 0 1234 567 0 0 20 0 9 0 123456 1300000000 7000 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n",
			want: (1234 + 567) * 10 * time.Millisecond,
		},
		{
			// A command name may hold spaces and parentheses: fields count from the last ')'.
			name: "tricky command name",
			stat: "7 (a) b (c) d) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 1 1",
			want: 7 * 10 * time.Millisecond,
		},
		{name: "no command", stat: "7 a R 1", wantErr: ErrProcFormat},
		{name: "short", stat: "7 (a) R 1 7 7 0", wantErr: ErrProcFormat},
		{name: "not a number", stat: "7 (a) R 1 7 7 0 -1 0 0 0 0 0 x 4 0", wantErr: ErrProcFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.stat))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseStatusRSS(t *testing.T) {
	status := "Name:\tcertbind\nVmPeak:\t 1300000 kB\nVmHWM:\t   30000 kB\nVmRSS:\t   24576 kB\nRssAnon:\t 10000 kB\n"
	got, err := parseStatusRSS([]byte(status))
	if err != nil || got != 24576*1024 {
		t.Errorf("got %d, %v; want %d", got, err, 24576*1024)
	}
	if got, err := parseStatusKB([]byte(status), "VmHWM"); err != nil || got != 30000*1024 {
		t.Errorf("VmHWM: got %d, %v; want %d", got, err, 30000*1024)
	}
	for _, bad := range []string{"Name:\tkthreadd\n", "VmRSS:\t 12 MB\n", "VmRSS:\t x kB\n"} {
		if _, err := parseStatusRSS([]byte(bad)); !errors.Is(err, ErrProcFormat) {
			t.Errorf("%q: err = %v, want ErrProcFormat", bad, err)
		}
	}
}

func TestProcessSelf(t *testing.T) {
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn at least two clock ticks of CPU.
	deadline := time.Now().Add(30 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	after, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("CPU time did not grow: %v then %v", before, after)
	}
	if rss, err := ProcessRSS(os.Getpid()); err != nil || rss < 1<<20 {
		t.Errorf("ProcessRSS(self) = %d, %v", rss, err)
	}
	if _, err := ProcessCPU(-1); err == nil {
		t.Error("ProcessCPU(-1) succeeded")
	}
}

func TestParseMachineCPU(t *testing.T) {
	stat := "cpu  100 5 50 9000 7 3 2 1 0 0\ncpu0 50 2 25 4500 3 1 1 0 0 0\n"
	got, err := parseMachineCPU([]byte(stat))
	if want := (100 + 5 + 50 + 3 + 2 + 1) * 10 * time.Millisecond; err != nil || got != want {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"intr 1 2 3\n", "cpu 1 2 3\n", "cpu 1 2 x 4 5 6 7 8\n"} {
		if _, err := parseMachineCPU([]byte(bad)); !errors.Is(err, ErrProcFormat) {
			t.Errorf("%q: err = %v, want ErrProcFormat", bad, err)
		}
	}
	if _, err := MachineCPU(); err != nil {
		t.Error(err)
	}
}

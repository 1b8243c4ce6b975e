package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports (sysconf(_SC_CLK_TCK)).
const clockTick = 10 * time.Millisecond

// ErrProcFormat is returned for a /proc file that does not have the expected layout.
var ErrProcFormat = errors.New("unexpected /proc format")

// ProcessCPU returns the CPU time, user plus system, that process pid and all its threads have
// used so far, from /proc/<pid>/stat. The resolution is one clock tick (10 ms): measure windows
// of seconds.
func ProcessCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(data)
}

// parseStatCPU reads utime and stime, fields 14 and 15 of proc(5) stat. The second field, the
// command name in parentheses, may itself hold spaces and ')', so fields are counted from the
// last ')'.
func parseStatCPU(data []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return 0, fmt.Errorf("stat: %w: no command name", ErrProcFormat)
	}
	// After "pid (comm) " come state (field 3), ppid (4), ... utime (14), stime (15).
	fields := bytes.Fields(data[end+1:])
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("stat: %w: %d fields after the command name", ErrProcFormat, len(fields))
	}
	var ticks uint64
	for _, i := range []int{utime, stime} {
		v, err := strconv.ParseUint(string(fields[i]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: field %d: %w: %v", i+3, ErrProcFormat, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * clockTick, nil
}

// ProcessRSS returns the resident set size of process pid in bytes (VmRSS of /proc/<pid>/status).
func ProcessRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusRSS(data)
}

// ProcessPeakRSS returns the largest resident set size process pid has had, in bytes (VmHWM of
// /proc/<pid>/status).
func ProcessPeakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusKB(data, "VmHWM")
}

func parseStatusRSS(data []byte) (int64, error) { return parseStatusKB(data, "VmRSS") }

// parseStatusKB reads the field of /proc/<pid>/status named field, in kB, as bytes.
func parseStatusKB(data []byte, field string) (int64, error) {
	for line := range bytes.Lines(data) {
		rest, ok := bytes.CutPrefix(line, []byte(field+":"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("status: %s %q: %w", field, bytes.TrimSpace(rest), ErrProcFormat)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status: %s: %w: %v", field, ErrProcFormat, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("status: %w: no %s line (a kernel thread, or a zombie)", ErrProcFormat, field)
}

// MachineCPU returns the CPU time all CPUs of the machine have been busy so far (user, nice,
// system, irq, softirq and steal of the "cpu" line of /proc/stat): with the server's and the
// load generator's own time subtracted, what else ran during a measurement.
func MachineCPU() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineCPU(data)
}

func parseMachineCPU(data []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := bytes.Fields(line)
	// cpu user nice system idle iowait irq softirq steal [guest guest_nice], guest counted in user
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, fmt.Errorf("stat: %w: first line %q", ErrProcFormat, line)
	}
	var ticks uint64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseUint(string(f[i]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: cpu field %d: %w: %v", i, ErrProcFormat, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * clockTick, nil
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/certbind/certbind/testenv/logbuf"
)

func TestJSONFormatter(t *testing.T) {
	var out bytes.Buffer
	l := logrus.New()
	l.Out = &out
	l.Formatter = jsonFormatter{}
	l.WithFields(logrus.Fields{
		"reason": `quote " backslash \ newline
tab	`, "duration_us": int64(42), "n": 7, "ok": true, "cause": errors.New("bad\x00thing"),
		"list": []string{"a", "b"}, "client_id": "bïlling",
	}).Info("decision")
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	want := map[string]any{"msg": "decision", "level": "info", "duration_us": 42.0, "n": 7.0, "ok": true,
		"cause": "bad\x00thing", "client_id": "bïlling", "reason": "quote \" backslash \\ newline\ntab\t"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil {
		t.Errorf("time: %v", err)
	}
	if strings.Count(out.String(), "\n") != 1 {
		t.Errorf("not one line: %q", out.String())
	}
}

func TestBufferedLog(t *testing.T) {
	var out logbuf.Buffer
	// A flush interval no stalled test goroutine can outlast, so "not yet written" holds.
	slow := newBufferedLog(&out, time.Hour)
	slow.Write([]byte("one\n"))
	if got := out.String(); got != "" {
		t.Fatalf("written through at once: %q", got)
	}
	slow.Close()
	if got := out.String(); got != "one\n" {
		t.Fatalf("Close did not flush: %q", got)
	}
	out = logbuf.Buffer{}
	b := newBufferedLog(&out, flushEvery)
	b.Write([]byte("one\n"))
	deadline := time.Now().Add(2 * time.Second)
	for out.String() == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if out.String() != "one\n" {
		t.Fatalf("not flushed within the interval: %q", out.String())
	}
	b.Write([]byte(`{"level":"error","msg":"x"}` + "\n"))
	if !strings.HasSuffix(out.String(), `"msg":"x"}`+"\n") {
		t.Fatalf("an error line waited in the buffer: %q", out.String())
	}
	b.Write([]byte("two\n"))
	b.Close()
	if !strings.HasSuffix(out.String(), "two\n") {
		t.Fatalf("Close did not flush: %q", out.String())
	}
}

// TestBufferedLogFlushesProblems: a warning or error line is written through at once in both
// formats, with the longest time either writes; an info line is not, even when a value in it
// reads like a level.
func TestBufferedLogFlushesProblems(t *testing.T) {
	at := time.Date(2026, 12, 2, 23, 59, 59, 999999999, time.FixedZone("", -(9*3600+30*60)))
	for _, f := range []logrus.Formatter{jsonFormatter{}, &logrus.TextFormatter{FullTimestamp: true, DisableColors: true}} {
		for _, tc := range []struct {
			level logrus.Level
			cause string
			flush bool
		}{
			{logrus.WarnLevel, "", true},
			{logrus.ErrorLevel, "", true},
			{logrus.InfoLevel, `upstream said "level":"error" and level=error`, false},
		} {
			line, err := f.Format(&logrus.Entry{Time: at, Level: tc.level, Message: "decision",
				Data: logrus.Fields{"client_id": "billing", "cause": tc.cause, "reason": "ok"}})
			if err != nil {
				t.Fatal(err)
			}
			var out logbuf.Buffer
			b := newBufferedLog(&out, time.Hour)
			b.Write(line)
			if got := out.String() != ""; got != tc.flush {
				t.Errorf("%T %s: written through %v, want %v: %q", f, tc.level, got, tc.flush, line)
			}
			b.Close()
		}
	}
}

// TestRedisLogger: go-redis's own lines reach certbind's logger at debug level, in its format,
// and nowhere at the default level.
func TestRedisLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := newLogger("json", "debug", &buf)
	if err != nil {
		t.Fatal(err)
	}
	redisLogger{l}.Printf(context.Background(), "dial %s: %v", "127.0.0.1:1", "refused")
	if s := buf.String(); !strings.Contains(s, `"component":"redis"`) || !strings.Contains(s, `"level":"debug"`) || !strings.Contains(s, "dial 127.0.0.1:1: refused") {
		t.Errorf("logged %q", s)
	}
	buf.Reset()
	l.SetLevel(logrus.InfoLevel)
	redisLogger{l}.Printf(context.Background(), "dial")
	if buf.Len() != 0 {
		t.Errorf("at info level: %q", buf.String())
	}
}

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// bufferedLog batches log lines: one decision line per request would otherwise cost a write
// system call each. Lines reach the output within flushEvery, when 32 KiB are pending, on
// warnings and errors, and on Close.
type bufferedLog struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

const flushEvery = 200 * time.Millisecond

func newBufferedLog(out io.Writer, every time.Duration) *bufferedLog {
	b := &bufferedLog{w: bufio.NewWriterSize(out, 32<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.Flush()
			case <-b.stop:
				b.Flush()
				return
			}
		}
	}()
	return b
}

func (b *bufferedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.w.Write(p)
	if err == nil && problem(p) {
		err = b.w.Flush() // what explains an incident never waits in the buffer
	}
	return n, err
}

// levelWithin bounds where problem looks for the level: both formats write it right after the
// time, so a decision line (logged per check) is not searched whole, and a value further on
// that happens to read "level=error" is not taken for one.
const levelWithin = 96

// problem reports whether a formatted line (JSON or text) is a warning or worse.
func problem(line []byte) bool {
	line = line[:min(len(line), levelWithin)]
	for _, l := range [][]byte{[]byte(`"level":"warning"`), []byte(`"level":"error"`), []byte(`"level":"fatal"`), []byte(`"level":"panic"`),
		[]byte("level=warning"), []byte("level=error"), []byte("level=fatal"), []byte("level=panic")} {
		if bytes.Contains(line, l) {
			return true
		}
	}
	return false
}

// Flush writes out what is pending.
func (b *bufferedLog) Flush() {
	b.mu.Lock()
	b.w.Flush()
	b.mu.Unlock()
}

// Close flushes and stops the flusher.
func (b *bufferedLog) Close() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
}

// jsonFormatter writes logrus entries as one JSON object per line, like logrus's
// JSONFormatter (keys time, level, msg, then the fields in key order), without its map copy
// and reflection for the plain values a decision line carries.
type jsonFormatter struct{}

func (jsonFormatter) Format(e *logrus.Entry) ([]byte, error) {
	b := e.Buffer
	if b == nil {
		b = &bytes.Buffer{}
	}
	buf := b.AvailableBuffer()
	buf = append(buf, `{"time":`...)
	buf = appendJSONString(buf, e.Time.Format(time.RFC3339Nano))
	buf = append(buf, `,"level":`...)
	buf = appendJSONString(buf, e.Level.String())
	buf = append(buf, `,"msg":`...)
	buf = appendJSONString(buf, e.Message)
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		buf = append(buf, ',')
		buf = appendJSONString(buf, k)
		buf = append(buf, ':')
		switch v := e.Data[k].(type) {
		case string:
			buf = appendJSONString(buf, v)
		case int:
			buf = strconv.AppendInt(buf, int64(v), 10)
		case int64:
			buf = strconv.AppendInt(buf, v, 10)
		case bool:
			buf = strconv.AppendBool(buf, v)
		case error:
			buf = appendJSONString(buf, v.Error())
		default:
			j, err := json.Marshal(v)
			if err != nil {
				j, _ = json.Marshal(err.Error())
			}
			buf = append(buf, j...)
		}
	}
	buf = append(buf, "}\n"...)
	b.Write(buf)
	return b.Bytes(), nil
}

// appendJSONString appends s as a JSON string: plain printable ASCII directly, anything else
// through encoding/json's escaping.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s)
			return append(buf, j...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

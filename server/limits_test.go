package server

import (
	"net/http"
	"testing"
	"time"
)

// A read timeout shorter than the header timeout bounds the headers too.
func TestHTTPAuthzServerTimeouts(t *testing.T) {
	for _, tc := range []struct {
		lim                       HTTPLimits
		header, read, write, idle time.Duration
	}{
		{HTTPLimits{ReadTimeout: time.Second, WriteTimeout: 2 * time.Second, IdleTimeout: 3 * time.Second}, time.Second, time.Second, 2 * time.Second, 3 * time.Second},
		{HTTPLimits{ReadTimeout: time.Minute}, headerTimeout, time.Minute, 0, 0},
		{HTTPLimits{}, headerTimeout, 0, 0, 0},
	} {
		s := httpAuthzServer(http.NotFoundHandler(), tc.lim)
		if s.ReadHeaderTimeout != tc.header || s.ReadTimeout != tc.read || s.WriteTimeout != tc.write || s.IdleTimeout != tc.idle {
			t.Errorf("%+v: header %s read %s write %s idle %s", tc.lim, s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
		}
	}
}

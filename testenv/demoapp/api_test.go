package demoapp_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/certbind/certbind/testenv/demoapp"
)

func TestAPIEcho(t *testing.T) {
	srv := httptest.NewServer(demoapp.NewAPI())
	defer srv.Close()

	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/api/orders?limit=2&x=%2F"},
		{http.MethodPost, "/internal/reports"},
		{http.MethodDelete, "/api/admin/users/7"},
		{http.MethodGet, "/a//b/../c"}, // echoed as received, not redirected
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		req.Header.Set("X-Certbind-Client-Id", "billing")
		req.Header.Add("Client-Cert", ":AAAA:")
		req.Header.Add("X-Multi", "a")
		req.Header.Add("X-Multi", "b")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e demoapp.Echo
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if e.Method != tc.method || e.Path != tc.path {
			t.Errorf("echo %s %s, want %s %s", e.Method, e.Path, tc.method, tc.path)
		}
		for name, want := range map[string]string{
			"x-certbind-client-id": "billing",
			"client-cert":          ":AAAA:",
			"x-multi":              "a, b",
			"host":                 srv.Listener.Addr().String(),
		} {
			if e.Headers[name] != want {
				t.Errorf("%s: header %s = %q, want %q (all: %v)", tc.path, name, e.Headers[name], want, e.Headers)
			}
		}
	}
}

func TestAPIHealth(t *testing.T) {
	w := httptest.NewRecorder()
	demoapp.NewAPI().ServeHTTP(w, httptest.NewRequest(http.MethodGet, demoapp.PathHealth, nil))
	body, _ := io.ReadAll(w.Body)
	if w.Code != http.StatusOK || string(body) != "ok" {
		t.Errorf("healthz: %d %q", w.Code, body)
	}
}

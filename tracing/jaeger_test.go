package tracing_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/testenv/logbuf"
)

// jaegerConfig runs Jaeger v2 with in-memory storage, an OTLP/HTTP receiver and the query API,
// all on loopback ports, and no listener of its own telemetry.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memory:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memory
    http:
      endpoint: %s
    grpc:
      endpoint: %s
receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
processors:
  batch:
    timeout: 50ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memory
`

// jaeger reads spans back through Jaeger's query API (/api/traces/{id}).
type jaeger struct{ url string }

func (j jaeger) trace(t *testing.T, traceID string) []span {
	resp, err := http.Get(j.url + "/api/traces/" + traceID)
	if err != nil {
		t.Fatalf("Jaeger query: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil // not stored yet
	}
	var doc struct {
		Data []struct {
			Spans []struct {
				SpanID        string `json:"spanID"`
				OperationName string `json:"operationName"`
				References    []struct {
					RefType string `json:"refType"`
					SpanID  string `json:"spanID"`
				} `json:"references"`
				Tags []struct {
					Key   string `json:"key"`
					Value any    `json:"value"`
				} `json:"tags"`
			} `json:"spans"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("Jaeger query answer: %v", err)
	}
	var out []span
	for _, tr := range doc.Data {
		for _, s := range tr.Spans {
			sp := span{name: s.OperationName, id: s.SpanID, attrs: map[string]string{}}
			for _, r := range s.References {
				if r.RefType == "CHILD_OF" {
					sp.parent = r.SpanID
				}
			}
			for _, tag := range s.Tags {
				v := fmt.Sprint(tag.Value)
				sp.attrs[tag.Key] = v
				if tag.Key == "otel.status_code" && v == "ERROR" {
					sp.failed = true
				}
			}
			out = append(out, sp)
		}
	}
	return out
}

// TestTracesInJaeger runs the proxy scenario against a real receiver: Jaeger v2, built from its
// Go module (make tracing-jaeger builds it and sets CERTBIND_JAEGER), spans exported over
// OTLP/HTTP and read back through Jaeger's query API.
func TestTracesInJaeger(t *testing.T) {
	bin := os.Getenv("CERTBIND_JAEGER")
	if bin == "" {
		t.Skip("run by make tracing-jaeger (Jaeger built from its Go module)")
	}
	otlp, query, queryGRPC := freePort(t), freePort(t), freePort(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(jaegerConfig, query, queryGRPC, otlp)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfg)
	var out logbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("jaeger output:\n%s", out.String())
		}
	})
	j := jaeger{url: "http://" + query}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(j.url + "/api/services")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Jaeger's query API did not come up: %v\n%s", err, out.String())
		}
	}
	tracesThroughTheProxy(t, j, "http/protobuf", "http://"+strings.TrimSpace(otlp))
}

package envoyxfcc

import (
	"fmt"
	"strings"
)

// IntegrationCase is one case of Envoy's XFCC integration tests
// (test/integration/xfcc_integration_test.cc): what a client sent through a listener with the
// given forward_client_cert_details and set_current_client_cert_details, and what the upstream
// received. Absent headers have Present false.
type IntegrationCase struct {
	Name                  string
	Mode                  ForwardMode
	Details               Details // Subject, URI and DNS only: the tests set no others
	MTLS                  bool
	In, Out               string
	InPresent, OutPresent bool
}

// ParseIntegrationCases reads the vector file extauthz/xfcc/testdata/envoy-integration.txt,
// whose header comment describes the format. The parser's tests read what Envoy wrote; this
// package's tests reproduce it.
func ParseIntegrationCases(text string) ([]IntegrationCase, error) {
	var cases []IntegrationCase
	for n, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		if word != "case" && len(cases) == 0 {
			return nil, fmt.Errorf("line %d: %q before the first case", n+1, word)
		}
		switch word {
		case "case":
			f := strings.Fields(rest)
			if len(f) != 4 {
				return nil, fmt.Errorf("line %d: bad case line %q", n+1, line)
			}
			c := IntegrationCase{Name: f[0], Mode: ForwardMode(f[1]), MTLS: f[3] == "mtls"}
			for _, d := range strings.Split(f[2], ",") {
				switch d {
				case "subject":
					c.Details.Subject = true
				case "uri":
					c.Details.URI = true
				case "dns":
					c.Details.DNS = true
				case "-":
				default:
					return nil, fmt.Errorf("line %d: unknown detail %q", n+1, d)
				}
			}
			cases = append(cases, c)
		case "in":
			cases[len(cases)-1].In, cases[len(cases)-1].InPresent = rest, true
		case "out":
			cases[len(cases)-1].Out, cases[len(cases)-1].OutPresent = rest, true
		case "in-absent", "out-absent":
		default:
			return nil, fmt.Errorf("line %d: bad line %q", n+1, line)
		}
	}
	return cases, nil
}

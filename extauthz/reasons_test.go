package extauthz

import (
	"testing"

	"github.com/certbind/certbind/policy"
	"google.golang.org/grpc/codes"
)

func TestEveryReasonIsMapped(t *testing.T) {
	for _, r := range policy.Reasons() {
		m, ok := reasonTable[r]
		if !ok {
			t.Errorf("reason %q has no entry in reasonTable", r)
			continue
		}
		if (r == policy.ReasonOK) != (m.code == codes.OK) {
			t.Errorf("reason %q maps to gRPC %s", r, m.code)
		}
		if r.Description() == string(r) {
			t.Errorf("reason %q has no description", r)
		}
	}
	if len(reasonTable) != len(policy.Reasons()) {
		t.Errorf("reasonTable has %d entries, policy.Reasons %d: a stale entry", len(reasonTable), len(policy.Reasons()))
	}
}

package policy_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"testing"

	"github.com/certbind/certbind/policy"
)

// TestReasonTable: every Reason constant declared in reason.go is in the one table, once, with
// a class and a description, in declaration order.
func TestReasonTable(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "reason.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []policy.Reason
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Reason" {
				continue
			}
			v, err := strconv.Unquote(vs.Values[0].(*ast.BasicLit).Value)
			if err != nil {
				t.Fatal(err)
			}
			declared = append(declared, policy.Reason(v))
		}
	}
	if got := policy.Reasons(); !slices.Equal(got, declared) {
		t.Fatalf("the table lists\n%q\nreason.go declares\n%q", got, declared)
	}
	seen := map[policy.Reason]bool{}
	for _, r := range declared {
		if seen[r] {
			t.Errorf("reason %q declared twice", r)
		}
		seen[r] = true
		if r.Description() == string(r) {
			t.Errorf("reason %q has no description", r)
		}
		if (r == policy.ReasonOK) != (r.Class() == policy.ClassOK) {
			t.Errorf("reason %q has class %d", r, r.Class())
		}
	}
}

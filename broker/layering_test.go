package broker

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The broker routes; where a team lives (SSH or this machine) belongs to
// package hosts. These tests keep it that way.

func TestBrokerDoesNotImportSSH(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const mod = "github.com/switchboard-mcp/switchboard/"
	allowed := map[string]bool{mod + "broker": true, mod + "proc": true, mod + "configs": true, mod + "models": true,
		// Leaves that import nothing of the module: a recorder of timestamps
		// for the benchmark, and JSON decoding as the MCP SDK does it.
		mod + "internal/hoptrace": true, mod + "internal/sdkjson": true}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(dep, "golang.org/x/crypto/ssh"):
			t.Errorf("broker depends on %s", dep)
		case strings.HasPrefix(dep, mod) && !allowed[dep]:
			t.Errorf("broker depends on %s; of this module it may import only proc, configs, models, internal/hoptrace and internal/sdkjson", dep)
		}
	}
}

func TestBrokerNeverAsksIsRemote(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "IsRemote" {
				t.Errorf("%s: the broker asks IsRemote; ask the team's Host instead", fset.Position(sel.Pos()))
			}
			return true
		})
	}
}

package sextant

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayering enforces that imports flow cmd → services → pkg → gen and
// never back up, and that no service imports another.
func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/sextant-analytics/sextant/"
	layer := func(pkg string) (string, string) {
		rel := strings.TrimPrefix(pkg, mod)
		parts := strings.SplitN(rel, "/", 3)
		switch parts[0] {
		case "cmd", "pkg", "gen":
			return parts[0], ""
		case "services":
			if len(parts) > 1 {
				return "services", parts[1]
			}
		}
		return "", ""
	}
	rank := map[string]int{"gen": 0, "pkg": 1, "services": 2, "cmd": 3}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		from, fromSvc := layer(fields[0])
		if from == "" {
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			to, toSvc := layer(imp)
			if to == "" {
				continue
			}
			checked++
			if rank[to] > rank[from] {
				t.Errorf("%s imports %s: imports must flow cmd → services → pkg → gen", fields[0], imp)
			}
			if from == "services" && to == "services" && fromSvc != toSvc {
				t.Errorf("%s imports another service, %s: share through pkg/", fields[0], imp)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d imports: is go list output parsed right?", checked)
	}
}

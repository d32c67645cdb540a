// Package mutants checks that a conformance suite catches the bugs it is
// meant to. A suite's own tests run it against a small reference
// implementation that passes; a mutant is that implementation with one bug,
// chosen by an environment variable, and Check runs the test binary once per
// mutant and requires the subtest meant to catch the bug to fail:
//
//	const mutantEnv = "VIEWSTORETEST_MUTANT"
//
//	func TestMemStore(t *testing.T) {
//		mutant := os.Getenv(mutantEnv) // "" outside Check
//		Run(t, ... a memStore with that mutant ...)
//	}
//
//	func TestSuiteCatchesMutants(t *testing.T) {
//		mutants.Check(t, mutantEnv, "TestMemStore", map[string]string{"scan-reverse": "Scan", ...})
//	}
package mutants

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Check runs, for each mutant of ms (its name: the subtest of test that
// must catch it), that subtest in a child test process with env set to the
// mutant's name, and fails unless the subtest fails. It skips with -short
// and inside a child process.
func Check(t *testing.T, env, test string, ms map[string]string) {
	t.Helper()
	if os.Getenv(env) != "" {
		t.Skip("running a mutant")
	}
	if testing.Short() {
		t.Skip("short")
	}
	for name, subtest := range ms {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0],
				"-test.run=^"+test+"$/^"+subtest+"$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), env+"="+name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("mutant %s: subtest %s did not fail (err %v):\n%s", name, subtest, err, out)
			}
			if !strings.Contains(string(out), "--- FAIL: "+test+"/"+subtest) {
				t.Fatalf("mutant %s: subtest %s not reported failing:\n%s", name, subtest, out)
			}
		})
	}
}

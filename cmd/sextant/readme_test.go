package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// example is one `sh` block of the README and the output shown after it.
type example struct {
	tag      string // "" for `sh`, "distributed" for `sh distributed`
	lang     string // "sh", or "python" and "js" for Google's Data API clients (`python ga4`, `js ga4`)
	line     int
	script   string
	kind     string // "json", "text" or "" (output not shown)
	expected string
}

func readmeExamples(t *testing.T) []example {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var (
		out             []example
		inBlock         bool
		info            string
		body            strings.Builder
		start, blockLen int
	)
	for i, line := range strings.Split(string(b), "\n") {
		if !inBlock && strings.HasPrefix(line, "```") {
			inBlock, info, start = true, strings.TrimSpace(strings.TrimPrefix(line, "```")), i+1
			body.Reset()
			continue
		}
		if inBlock && strings.HasPrefix(line, "```") {
			inBlock = false
			switch {
			case info == "sh" || strings.HasPrefix(info, "sh "):
				out = append(out, example{tag: strings.TrimSpace(strings.TrimPrefix(info, "sh")), lang: "sh", line: start, script: body.String()})
			case info == "python ga4" || info == "js ga4":
				out = append(out, example{lang: strings.TrimSuffix(info, " ga4"), line: start, script: body.String()})
			case strings.HasSuffix(info, " output") && len(out) > 0 && out[len(out)-1].kind == "":
				out[len(out)-1].kind = strings.TrimSuffix(info, " output")
				out[len(out)-1].expected = body.String()
			}
			blockLen++
			continue
		}
		if inBlock {
			body.WriteString(line + "\n")
		}
	}
	if len(out) < 5 {
		t.Fatalf("found only %d sh examples in the README", len(out))
	}
	return out
}

// jsonValues decodes a stream of JSON values, dropping the volatile
// dataWatermark.
func jsonValues(s string) ([]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	var vals []any
	for {
		var v any
		if err := dec.Decode(&v); err == io.EOF {
			return vals, nil
		} else if err != nil {
			return nil, err
		}
		vals = append(vals, dropKey(v, "dataWatermark"))
	}
}

func dropKey(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		delete(x, key)
		for k, e := range x {
			x[k] = dropKey(e, key)
		}
	case []any:
		for i, e := range x {
			x[i] = dropKey(e, key)
		}
	}
	return v
}

func grpcurlDir(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("grpcurl"); err == nil {
		return filepath.Dir(p)
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-modfile=tools/go.mod", "-o", filepath.Join(dir, "grpcurl"), "github.com/fullstorydev/grpcurl/cmd/grpcurl")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building grpcurl: %v\n%s", err, out)
	}
	return dir
}

// TestREADME runs every `sh` example of the README, in order, against a
// fresh server, and compares each answer with the one the README shows.
func TestREADME(t *testing.T) {
	skipShort(t)
	examples := withTag(readmeExamples(t), "")
	bin := grpcurlDir(t)
	addr := freeAddr(t)
	srv := startServer(t, t.TempDir(), addr)
	env := append(embeddedEnv(), demoEnv(t, srv.stdout.String())...)
	env = append(env, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	env = append(env, "SEXTANT_SERVER=http://"+addr) // for `sextant projection …`
	// `sextant context set` writes a file of the test's own.
	env = append(env, "SEXTANT_CONFIG="+filepath.Join(t.TempDir(), "sextant", "config.json"))
	runExamples(t, examples, env, map[string]string{"127.0.0.1:8080": addr})
}

// runExamples runs README examples in order with env, replacing addresses,
// and compares each answer with the README's.
func runExamples(t *testing.T, examples []example, env []string, addrs map[string]string) {
	t.Helper()
	for _, ex := range examples {
		script := ex.script
		for from, to := range addrs {
			script = strings.ReplaceAll(script, from, to)
		}
		var got string
		var err error
		// Reports may run before the projection committed the events sent
		// just before (it commits every 50 ms here): retry for a while.
		deadline := time.Now().Add(5 * time.Second)
		for {
			cmd, cmdEnv := exec.Command("bash", "-euo", "pipefail", "-c", script), env
			if ex.lang != "sh" {
				// Google's clients, as ./test.sh installs them for
				// TestGA4Clients.
				clients := os.Getenv("SEXTANT_GA4_CLIENTS")
				if clients == "" {
					t.Logf("README line %d: no SEXTANT_GA4_CLIENTS, the %s example is not run", ex.line, ex.lang)
					break
				}
				if ex.lang == "python" {
					cmd = exec.Command(filepath.Join(clients, "venv", "bin", "python"), "-")
				} else {
					cmd = exec.Command("node", "-")
					cmdEnv = append(slices.Clip(env), "NODE_PATH="+filepath.Join(clients, "node_modules"))
				}
				cmd.Stdin = strings.NewReader(script)
			}
			cmd.Env = cmdEnv
			cmd.Dir = "../.." // the examples run from the repository's root
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			var out []byte
			out, err = cmd.Output()
			got = string(out)
			if err != nil {
				err = &exampleError{err: err, stderr: stderr.String()}
			} else {
				err = compare(ex, got)
			}
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("README line %d:\n%s\nfailed: %v\ngot:\n%s", ex.line, ex.script, err, got)
		}
	}
}

type exampleError struct {
	err    error
	stderr string
}

func (e *exampleError) Error() string { return e.err.Error() + ": " + e.stderr }

type mismatch string

func (m mismatch) Error() string { return string(m) }

func compare(ex example, got string) error {
	switch ex.kind {
	case "json":
		want, err := jsonValues(ex.expected)
		if err != nil {
			return mismatch("the README's expected JSON does not parse: " + err.Error())
		}
		have, err := jsonValues(got)
		if err != nil {
			return mismatch("output is not JSON: " + err.Error())
		}
		if !matches(want, have) {
			return mismatch("output differs from the README's")
		}
	case "text":
		if strings.TrimSpace(got) != strings.TrimSpace(ex.expected) {
			return mismatch("output differs from the README's")
		}
	}
	return nil
}

// matches compares JSON values; in the README's, the string "…" stands for
// any value (ids, secrets and times that differ at every run).
func matches(want, have any) bool {
	if w, ok := want.(string); ok && w == "…" {
		return have != nil
	}
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for k, wv := range w {
			hv, ok := h[k]
			if !ok || !matches(wv, hv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !matches(w[i], h[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(want, have)
}

func withTag(all []example, tag string) []example {
	var out []example
	for _, ex := range all {
		if ex.tag == tag {
			out = append(out, ex)
		}
	}
	return out
}

var readmeAddr = regexp.MustCompile(`127\.0\.0\.1:80\d\d`)

// TestREADMEDistributed runs the README's distributed section verbatim
// (but for the ports) on the local stack, then every quick-start example
// against its gateway.
func TestREADMEDistributed(t *testing.T) {
	needStack(t)
	all := readmeExamples(t)
	setup := withTag(all, "distributed")
	if len(setup) != 1 {
		t.Fatalf("want one `sh distributed` block in the README, found %d", len(setup))
	}
	addrs := map[string]string{}
	for _, a := range readmeAddr.FindAllString(setup[0].script, -1) {
		if _, ok := addrs[a]; !ok {
			addrs[a] = freeAddr(t)
		}
	}
	if _, ok := addrs["127.0.0.1:8080"]; !ok {
		t.Fatal("the distributed section has no gateway on 127.0.0.1:8080")
	}
	script := setup[0].script
	for from, to := range addrs {
		script = strings.ReplaceAll(script, from, to)
	}
	// A topic and a keyspace of this run's own: replays create versions,
	// and a version is built once per keyspace.
	runEnv := append(os.Environ(), "SEXTANT_KAFKA_TOPIC=readme-"+randomName(), "SEXTANT_STACK_CQL_KEYSPACE=readme_"+randomName(), geoipEnv())
	out, stderr, err := runScript(t, script, runEnv, 5*time.Minute, "the distributed section")
	if err != nil {
		t.Fatalf("the distributed section failed: %v\n%s\n%s", err, out, stderr)
	}
	env := append(append([]string{}, runEnv...), demoEnv(t, string(out))...)
	env = append(env, "PATH="+grpcurlDir(t)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"SEXTANT_SERVER=http://"+addrs["127.0.0.1:8080"], "SEXTANT_CONFIG="+filepath.Join(t.TempDir(), "sextant", "config.json"))
	runExamples(t, withTag(all, ""), env, map[string]string{"127.0.0.1:8080": addrs["127.0.0.1:8080"]})
}

// runScript runs a README block's script with bash (-euo pipefail) from
// the repository's root, in a process group of its own that is stopped
// when the test ends (what the block started and left running included),
// and returns its output, its standard error and its error; it fails the
// test when the script takes longer than timeout.
func runScript(t *testing.T, script string, env []string, timeout time.Duration, what string) ([]byte, string, error) {
	t.Helper()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = "../.."
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if cmd.Process == nil {
			return
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if syscall.Kill(-cmd.Process.Pid, 0) != nil {
				return // the group is gone
			}
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.Output(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("%s did not finish in %v", what, timeout)
	}
	return out, stderr.String(), err
}

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/cliconfig"
)

const (
	localAdmin = "sxa_LocalAdminKey0123456789abcdefgh"
	localRead  = "sxr_LocalReadKey0123456789abcdefghi"
	otherAdmin = "sxa_OtherAdminKey0123456789abcdefgh"
	envAdmin   = "sxa_EnvAdminKey0123456789abcdefghij"
)

// writeContexts saves a config of two contexts, local the current one,
// where SEXTANT_CONFIG points.
func writeContexts(t *testing.T, current string) {
	t.Helper()
	err := cliconfig.Save(os.Getenv("SEXTANT_CONFIG"), cliconfig.Config{Current: current, Contexts: map[string]cliconfig.Context{
		"local": {Server: "http://127.0.0.1:9090", AdminKey: localAdmin, ReadKey: localRead},
		"other": {Server: "https://other.example", AdminKey: otherAdmin},
	}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestContextPrecedence: a value comes from the flag, else the
// environment, else the context (--context, else SEXTANT_CONTEXT, else the
// current one), else the flag's default.
func TestContextPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name                string
		noFile              bool
		current             string
		env                 map[string]string
		args                []string
		server, admin, read string
		err                 error
	}{
		{name: "no file: defaults", noFile: true, server: defaultServer},
		{name: "no current context: defaults", server: defaultServer},
		{name: "current context", current: "local", server: "http://127.0.0.1:9090", admin: localAdmin, read: localRead},
		{name: "environment over context", current: "local", env: map[string]string{"SEXTANT_SERVER": "http://env:1", "SEXTANT_ADMIN_KEY": envAdmin},
			server: "http://env:1", admin: envAdmin, read: localRead},
		{name: "flag over environment", current: "local", env: map[string]string{"SEXTANT_SERVER": "http://env:1"}, args: []string{"--server", "http://flag:2"},
			server: "http://flag:2", admin: localAdmin, read: localRead},
		{name: "empty flag over context", current: "local", args: []string{"--admin-key", ""}, server: "http://127.0.0.1:9090", read: localRead},
		{name: "--context", current: "local", args: []string{"--context", "other"}, server: "https://other.example", admin: otherAdmin},
		{name: "SEXTANT_CONTEXT", current: "local", env: map[string]string{"SEXTANT_CONTEXT": "other"}, server: "https://other.example", admin: otherAdmin},
		{name: "--context over SEXTANT_CONTEXT", env: map[string]string{"SEXTANT_CONTEXT": "other"}, args: []string{"--context", "local"},
			server: "http://127.0.0.1:9090", admin: localAdmin, read: localRead},
		{name: "--context without a current one", args: []string{"--context", "local"}, server: "http://127.0.0.1:9090", admin: localAdmin, read: localRead},
		{name: "unknown --context", current: "local", args: []string{"--context", "staging"}, err: cliconfig.ErrNoContext},
		{name: "unknown --context, every value given", args: []string{"--context", "staging", "--server", "http://x:1", "--admin-key", "k", "--read-key", "r"},
			err: cliconfig.ErrNoContext},
		{name: "unknown current context", current: "gone", err: cliconfig.ErrNoContext},
		{name: "unknown --context, no file", noFile: true, args: []string{"--context", "local"}, err: cliconfig.ErrNoContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearSextantEnv(t)
			if !tc.noFile {
				writeContexts(t, tc.current)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			f := newFlags("property get", io.Discard)
			server, admin := serverFlags(f, "an admin key")
			read := f.Secret("read-key", "a read key")
			err := f.parse(tc.args)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("parse: %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *server != tc.server || *admin != tc.admin || *read != tc.read {
				t.Errorf("server %q, admin key %q, read key %q; want %q, %q, %q", *server, *admin, *read, tc.server, tc.admin, tc.read)
			}
		})
	}
}

// TestContextFileRefused: a config file others can read fails the
// commands that would read it, saying how to fix it.
func TestContextFileRefused(t *testing.T) {
	clearSextantEnv(t)
	writeContexts(t, "local")
	path := os.Getenv("SEXTANT_CONFIG")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"property", "list"}, {"projection", "list"}, {"context", "list"}} {
		err := dispatch(context.Background(), args, io.Discard, io.Discard)
		if !errors.Is(err, cliconfig.ErrInsecure) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("%v: %v, want the file refused", args, err)
		}
	}
}

// TestContextCommands: set, use, list, show and delete, with the file
// written 0600, and keys never printed whole.
func TestContextCommands(t *testing.T) {
	clearSextantEnv(t)
	path := os.Getenv("SEXTANT_CONFIG")
	ctx := context.Background()
	run := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := dispatch(ctx, append([]string{"context"}, args...), &stdout, &stderr); err != nil {
			t.Fatalf("context %v: %v\n%s", args, err, stderr.String())
		}
		out := stdout.String() + stderr.String()
		for _, k := range []string{localAdmin, localRead, otherAdmin, envAdmin} {
			if strings.Contains(out, k) {
				t.Errorf("context %v prints a key whole:\n%s", args, out)
			}
		}
		return out
	}
	if out := run("list"); !strings.Contains(out, "no contexts") {
		t.Errorf("list of none: %q", out)
	}
	if out := run("set", "local", "--server", "127.0.0.1:9090", "--admin-key", localAdmin); !strings.Contains(out, "the current context") {
		t.Errorf("the first context is not current: %q", out)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config %s: %v, %v; want mode 0600", path, st, err)
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("config dir: %v, %v; want mode 0700", st, err)
	}
	// --from-env takes what no flag gives; the environment's server loses
	// to the flag.
	t.Setenv("SEXTANT_SERVER", "http://ignored:1")
	t.Setenv("SEXTANT_ADMIN_KEY", otherAdmin)
	t.Setenv("SEXTANT_PROPERTY_ID", "123")
	run("set", "other", "--from-env", "--server", "https://other.example")
	t.Setenv("SEXTANT_SERVER", "")
	t.Setenv("SEXTANT_ADMIN_KEY", "")
	t.Setenv("SEXTANT_PROPERTY_ID", "")
	run("set", "local", "--read-key", localRead) // changes only the read key
	cfg, err := cliconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	wantCfg := map[string]cliconfig.Context{
		"local": {Server: "http://127.0.0.1:9090", AdminKey: localAdmin, ReadKey: localRead},
		"other": {Server: "https://other.example", AdminKey: otherAdmin, PropertyID: "123"},
	}
	if cfg.Current != "local" || len(cfg.Contexts) != 2 || cfg.Contexts["local"] != wantCfg["local"] || cfg.Contexts["other"] != wantCfg["other"] {
		t.Fatalf("config %+v, want current local and %+v", cfg, wantCfg)
	}

	out := run("list")
	for _, w := range []string{"*        local", "sxa_…efgh", "sxr_…fghi", "https://other.example", "123"} {
		if !strings.Contains(out, w) {
			t.Errorf("list has no %q:\n%s", w, out)
		}
	}
	out = run("show")
	for _, w := range []string{"local (current", "http://127.0.0.1:9090  context local", "sxa_…efgh", "write key"} {
		if !strings.Contains(out, w) {
			t.Errorf("show has no %q:\n%s", w, out)
		}
	}
	t.Setenv("SEXTANT_ADMIN_KEY", envAdmin)
	if out := run("show", "other"); !strings.Contains(out, "env SEXTANT_ADMIN_KEY") || !strings.Contains(out, "https://other.example") {
		t.Errorf("show other, with SEXTANT_ADMIN_KEY:\n%s", out)
	}
	t.Setenv("SEXTANT_ADMIN_KEY", "")

	run("use", "other")
	run("delete", "other")
	if out := run("show"); !strings.Contains(out, "none") || !strings.Contains(out, defaultServer+"  default") {
		t.Errorf("show after the current context's deletion:\n%s", out)
	}
	for _, args := range [][]string{{"use", "gone"}, {"delete", "gone"}, {"show", "gone"}, {"set", "bad/name", "--server", "x:1"},
		{"set", "x", "--server", "ftp://x"}, {"set", "local"}, {"use"}, {"frobnicate"}} {
		if err := dispatch(ctx, append([]string{"context"}, args...), io.Discard, io.Discard); err == nil {
			t.Errorf("context %v succeeded", args)
		}
	}
}

// TestContextAgainstServer runs the CLI against a server on a port that is
// not the default, with nothing in the environment but SEXTANT_CONFIG:
// serve --save-context saves its URL and the demo keys, which property
// and projection commands then use; a context made with context set, picked
// with --context, reaches it too; and a later start keeps the keys.
func TestContextAgainstServer(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	config := filepath.Join(t.TempDir(), "sextant", "config.json")
	env := append(embeddedEnv(), "SEXTANT_CONFIG="+config) // the last SEXTANT_CONFIG counts
	addr := freeAddr(t)
	if strings.HasSuffix(addr, ":8080") {
		t.Skip("the free port is the default one")
	}
	srv := startServerEnv(t, env, dir, addr, "--save-context", "e2e")
	if out := srv.stdout.String(); !strings.Contains(out, "Saved the context e2e (its server and the demo property's keys)") {
		t.Fatalf("serve --save-context printed:\n%s", out)
	}
	if st, err := os.Stat(config); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config: %v, %v; want mode 0600", st, err)
	}
	keys := demoKeys(t, srv.stdout.String())

	if out := runCLI(t, env, "property", "list"); !strings.Contains(out, keys["SEXTANT_PROPERTY_ID"]) || !strings.Contains(out, "Demo") {
		t.Errorf("property list through the saved context:\n%s", out)
	}
	if out := runCLI(t, env, "property", "create", "--name", "Second"); !strings.Contains(out, `Created property "Second"`) {
		t.Errorf("property create through the saved context:\n%s", out)
	}
	if out := runCLI(t, env, "projection", "list"); !strings.Contains(out, "traffic/v1") {
		t.Errorf("projection list through the saved context:\n%s", out)
	}
	out := runCLI(t, env, "context", "show")
	for _, w := range []string{"e2e (current", "http://" + addr + "  context e2e", "property"} {
		if !strings.Contains(out, w) {
			t.Errorf("context show has no %q:\n%s", w, out)
		}
	}
	for _, k := range []string{"SEXTANT_ADMIN_KEY", "SEXTANT_READ_KEY", "SEXTANT_WRITE_KEY"} {
		if strings.Contains(out, keys[k]) {
			t.Errorf("context show prints %s whole:\n%s", k, out)
		}
	}

	// A read key alone lists projections; --context picks the context.
	runCLI(t, env, "context", "set", "reader", "--server", addr, "--read-key", keys["SEXTANT_READ_KEY"])
	if out := runCLI(t, env, "projection", "list", "--context", "reader"); !strings.Contains(out, "traffic/v1") {
		t.Errorf("projection list with --context reader:\n%s", out)
	}
	cmd := exec.Command(binary, "property", "list", "--context", "reader")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "--admin-key is required") {
		t.Errorf("property list with a context of no admin key: %v\n%s", err, out)
	}

	// A later start has no keys to show: the context keeps those it has.
	srv.stop(t)
	srv = startServerEnv(t, env, dir, addr, "--save-context", "e2e")
	if out := srv.stdout.String(); !strings.Contains(out, "Saved the context e2e (its server)") {
		t.Fatalf("second serve --save-context printed:\n%s", out)
	}
	if out := runCLI(t, env, "property", "list"); !strings.Contains(out, "Second") {
		t.Errorf("property list after a restart:\n%s", out)
	}
}

package main

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// helpPaths is every command and subcommand: each answers --help and -h.
var helpPaths = [][]string{
	{},
	{"serve"},
	{"property"},
	{"property", "create"},
	{"property", "list"},
	{"property", "get"},
	{"property", "update"},
	{"property", "delete"},
	{"property", "delete-user"},
	{"property", "key"},
	{"property", "key", "list"},
	{"property", "key", "create"},
	{"property", "key", "rotate"},
	{"property", "key", "revoke"},
	{"kafka"},
	{"kafka", "init"},
	{"migrate"},
	{"admin-key"},
	{"admin-key", "create"},
	{"geoip"},
	{"geoip", "fetch"},
	{"projection"},
	{"projection", "list"},
	{"projection", "status"},
	{"projection", "replay"},
	{"projection", "activate"},
	{"projection", "rollback"},
	{"projection", "delete"},
	{"context"},
	{"context", "set"},
	{"context", "use"},
	{"context", "list"},
	{"context", "show"},
	{"context", "delete"},
	{"loadgen"},
	{"completion"},
	{"version"},
}

// secretEnv are keys in the environment that help must never print.
var secretEnv = map[string]string{
	"SEXTANT_ADMIN_KEY": "sxa_secretvalue123",
	"SEXTANT_READ_KEY":  "sxr_secretvalue456",
	"SEXTANT_WRITE_KEY": "sxw_secretvalue789",
	"SEXTANT_KEYS":      "sxw_secretvalue012",
}

// TestHelpEveryCommand: --help, -h and help print the command's usage to
// stdout and exit 0, with no server, store or key, and never print a
// secret the environment holds.
func TestHelpEveryCommand(t *testing.T) {
	clearSextantEnv(t)
	for k, v := range secretEnv {
		t.Setenv(k, v)
	}
	// Help must not need a store: a data dir that cannot be created.
	t.Setenv("SEXTANT_DATA_DIR", "/dev/null/sextant")
	for _, path := range helpPaths {
		name := strings.TrimSpace("sextant " + strings.Join(path, " "))
		for _, h := range []string{"--help", "-h", "help"} {
			args := append(append([]string{}, path...), h)
			if h == "help" && len(path) > 0 {
				// `sextant help property key` is `sextant property key --help`.
				args = append([]string{"help"}, path...)
			}
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				code := run(context.Background(), args, &stdout, &stderr)
				for k, v := range secretEnv {
					if strings.Contains(stdout.String()+stderr.String(), v) {
						t.Errorf("the help prints %s's value", k)
					}
				}
				if code != 0 {
					t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
				}
				out := stdout.String()
				if first, _, _ := strings.Cut(out, "\n"); !strings.HasPrefix(first, "Usage: "+name) {
					t.Fatalf("first line %q, want one starting with %q\n%s", first, "Usage: "+name, out)
				}
				if strings.Contains(out, "-1ns") {
					t.Errorf("a default reads -1ns:\n%s", out)
				}
			})
		}
	}
}

// TestHelpListsOnlyUsedFlags: offline commands list the flags they use,
// not the serving ones.
func TestHelpListsOnlyUsedFlags(t *testing.T) {
	clearSextantEnv(t)
	for _, tc := range []struct {
		args          []string
		want, notWant []string
	}{
		{[]string{"property", "create", "-h"}, []string{"--name", "--offline", "--count", "--data-dir", "--cql-hosts"},
			[]string{"--redis-addr", "--cache-bytes", "--kafka-brokers", "--partitions", "--min-free-disk-mb"}},
		{[]string{"property", "list", "-h"}, []string{"--offline", "--data-dir"}, []string{"--redis-addr", "--cache-bytes", "--name"}},
		{[]string{"property", "get", "-h"}, []string{"--server", "--admin-key"}, []string{"--data-dir", "--offline"}},
		{[]string{"admin-key", "create", "-h"}, []string{"--data-dir", "--cql-hosts"}, []string{"--redis-addr", "--kafka-brokers"}},
		{[]string{"kafka", "init", "-h"}, []string{"--kafka-brokers", "--kafka-tls-ca", "--kafka-partitions"}, []string{"--redis-addr", "--cql-hosts", "--data-dir"}},
		{[]string{"migrate", "-h"}, []string{"--cql-hosts", "--cql-tls-ca", "--cql-replication-factor"}, []string{"--redis-addr", "--kafka-brokers", "--data-dir"}},
		{[]string{"serve", "-h"}, []string{"--redis-addr", "--cache-bytes", "--kafka-brokers", "--cql-hosts", "--data-dir", "(default auto)", "(default 64MiB)"}, []string{"-1ns"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tc.args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr.String())
			}
			out := stdout.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("no %s in\n%s", w, out)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out, w) {
					t.Errorf("%s in\n%s", w, out)
				}
			}
		})
	}
}

// TestCompletion: the scripts name every top-level command, and bash (zsh,
// fish where installed) parses them.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"completion", shell}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr.String())
			}
			script := stdout.String()
			for _, path := range helpPaths {
				if len(path) == 1 && !strings.Contains(script, path[0]) {
					t.Errorf("the %s script does not name %s", shell, path[0])
				}
			}
			for _, w := range []string{"rotate", "offline", "watermark-refresh"} {
				if !strings.Contains(script, w) {
					t.Errorf("the %s script does not name %s", shell, w)
				}
			}
			switch shell {
			case "bash":
				checkBashCompletes(t, script)
			case "fish":
				checkFishCompletes(t, script)
			}
			check := map[string][]string{"bash": {"bash", "-n"}, "zsh": {"zsh", "-n"}, "fish": {"fish", "--no-execute"}}[shell]
			bin, err := exec.LookPath(check[0])
			if err != nil {
				t.Skipf("no %s to check the script's syntax", shell)
			}
			cmd := exec.Command(bin, check[1:]...)
			cmd.Stdin = strings.NewReader(script)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s %v: %v\n%s", shell, check[1:], err, out)
			}
		})
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"completion", "powershell"}, &bytes.Buffer{}, &stderr); code == 0 {
		t.Fatal("completion of an unknown shell succeeded")
	}
}

// checkBashCompletes runs the bash script's function on command lines.
func checkBashCompletes(t *testing.T, script string) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	for _, tc := range []struct{ line, want string }{
		{"sextant pro", "property projection"},
		{"sextant property key r", "rotate revoke"},
		{"sextant property create --offline --data-dir /tmp --cou", "--count"},
		{"sextant serve --watermark-r", "--watermark-refresh"},
		{"sextant help mi", "migrate"},
	} {
		words := strings.Fields(tc.line)
		prog := script + "\nCOMP_WORDS=(" + strings.Join(words, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n_sextant\necho \"${COMPREPLY[*]}\"\n"
		out, err := exec.Command(bash, "-c", prog).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
			t.Errorf("%q completes to %q (%v), want %q", tc.line, got, err, tc.want)
		}
	}
}

func TestSizeAndAutoDurationFlags(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		show string
	}{
		{"1048576", 1 << 20, "1MiB"},
		{"64MiB", 64 << 20, "64MiB"},
		{"64m", 64 << 20, "64MiB"},
		{"512KiB", 512 << 10, "512KiB"},
		{"2G", 2 << 30, "2GiB"},
		{"1000", 1000, "1000"},
		{"1500k", 1500 << 10, "1500KiB"},
	} {
		var s byteSize
		if err := s.Set(tc.in); err != nil || int(s) != tc.want || s.String() != tc.show {
			t.Errorf("size %q: %d %q %v, want %d %q", tc.in, int(s), s.String(), err, tc.want, tc.show)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1TiB", "x"} {
		var s byteSize
		if err := s.Set(bad); err == nil {
			t.Errorf("size %q accepted as %d", bad, int(s))
		}
	}
	for in, show := range map[string]string{"auto": "auto", "-1ns": "auto", "0": "0s", "250ms": "250ms"} {
		var d autoDuration
		if err := d.Set(in); err != nil || d.String() != show {
			t.Errorf("duration %q shows %q (%v), want %q", in, d.String(), err, show)
		}
	}
}

// checkFishCompletes asks fish, where installed, for the completions of
// command lines.
func checkFishCompletes(t *testing.T, script string) {
	t.Helper()
	fish, err := exec.LookPath("fish")
	if err != nil {
		return // TestCompletion skips
	}
	for _, tc := range []struct{ line, want string }{
		{"sextant property key r", "revoke rotate"},
		{"sextant property create --of", "--offline"},
		{"sextant kafka init --kafka-b", "--kafka-brokers"},
	} {
		cmd := exec.Command(fish, "--no-config", "-c", "source; complete -C '"+tc.line+"'")
		cmd.Stdin = strings.NewReader(script)
		out, err := cmd.CombinedOutput()
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			word, _, _ := strings.Cut(l, "\t")
			got = append(got, word)
		}
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("%q completes to %q (%v), want %q", tc.line, got, err, tc.want)
		}
	}
}

// TestCommandTreeIsHelpPaths: completion offers the commands this test
// walks with --help, no more and no fewer.
func TestCommandTreeIsHelpPaths(t *testing.T) {
	var tree []string
	var walk func(prefix string, cmds []command)
	walk = func(prefix string, cmds []command) {
		for _, c := range cmds {
			p := strings.TrimSpace(prefix + " " + c.name)
			if p != "help" && !strings.HasPrefix(p, "completion ") {
				tree = append(tree, p)
			}
			walk(p, c.subs)
		}
	}
	walk("", commandTree)
	var paths []string
	for _, p := range helpPaths[1:] {
		paths = append(paths, strings.Join(p, " "))
	}
	if strings.Join(tree, "\n") != strings.Join(paths, "\n") {
		t.Fatalf("commandTree:\n%s\nhelpPaths:\n%s", strings.Join(tree, "\n"), strings.Join(paths, "\n"))
	}
}

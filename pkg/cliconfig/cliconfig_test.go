package cliconfig_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/cliconfig"
)

// TestSaveModes: the file is written with mode 0600 in a directory made
// with mode 0700, whatever the umask, and nothing else is left there;
// saving again replaces it and keeps its mode.
func TestSaveModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	dir := filepath.Join(t.TempDir(), "home", "sextant")
	path := filepath.Join(dir, "config.json")
	want := cliconfig.Config{Current: "local", Contexts: map[string]cliconfig.Context{
		"local": {Server: "http://127.0.0.1:9090", AdminKey: "sxa_0123456789abcdefghijklmnopqrst", PropertyID: "p1"},
	}}
	for i := range 2 {
		if err := cliconfig.Save(path, want); err != nil {
			t.Fatal(err)
		}
		for p, mode := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Mode().Perm(); got != mode {
				t.Errorf("save %d: %s has mode %#o, want %#o", i+1, p, got, mode)
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) != 1 {
			t.Errorf("save %d: the directory holds %v (%v), want config.json alone", i+1, entries, err)
		}
		got, err := cliconfig.Load(path)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Load = %+v, %v; want %+v", got, err, want)
		}
		want.Contexts["prod"] = cliconfig.Context{Server: "https://sextant.example"}
	}
}

// TestLoadRefusesOthersAccess: a file others can read or write is refused,
// naming the fix; a missing file is an empty config.
func TestLoadRefusesOthersAccess(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if c, err := cliconfig.Load(path); err != nil || len(c.Contexts) != 0 {
		t.Fatalf("Load of a missing file = %+v, %v", c, err)
	}
	if err := cliconfig.Save(path, cliconfig.Config{Current: "a", Contexts: map[string]cliconfig.Context{"a": {}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o640, false}, {0o644, false}, {0o604, false}, {0o620, false}, {0o666, false}} {
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, err := cliconfig.Load(path)
		if tc.ok != (err == nil) || !tc.ok && (!errors.Is(err, cliconfig.ErrInsecure) || !strings.Contains(err.Error(), "chmod 600 "+path)) {
			t.Errorf("mode %#o: Load = %v", tc.mode, err)
		}
	}
}

func TestGet(t *testing.T) {
	c := cliconfig.Config{Current: "local", Contexts: map[string]cliconfig.Context{
		"local": {Server: "http://127.0.0.1:9090"},
		"prod":  {Server: "https://sextant.example"},
	}}
	for _, tc := range []struct {
		cfg        cliconfig.Config
		name       string
		wantName   string
		wantServer string
		err        error
	}{
		{c, "", "local", "http://127.0.0.1:9090", nil},
		{c, "prod", "prod", "https://sextant.example", nil},
		{c, "staging", "staging", "", cliconfig.ErrNoContext},
		{cliconfig.Config{}, "", "", "", nil},
		{cliconfig.Config{Current: "gone"}, "", "gone", "", cliconfig.ErrNoContext},
	} {
		name, ctx, err := tc.cfg.Get(tc.name)
		if name != tc.wantName || ctx.Server != tc.wantServer || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("Get(%q) of %+v = %q, %+v, %v", tc.name, tc.cfg, name, ctx, err)
		}
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"":                                     "",
		"sxa_AbCdEfGhIjKlMnOpQrStUvWxYz012345": "sxa_…2345",
		"sxr_short":                            "sxr_…",
		"nounderscoreatallbutlongenough":       "…ough",
		"tiny":                                 "…",
	} {
		if got := cliconfig.Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestServerURLAndNames(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9090":          "http://127.0.0.1:9090",
		"http://127.0.0.1:9090/":  "http://127.0.0.1:9090",
		"https://sextant.example": "https://sextant.example",
		"ftp://x":                 "",
		"http://":                 "",
	} {
		got, err := cliconfig.ServerURL(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("ServerURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for name, ok := range map[string]bool{"local": true, "prod-eu.2": true, "a_b": true, "": false, "-x": false, "a b": false, "a/b": false, strings.Repeat("x", 65): false} {
		if err := cliconfig.ValidName(name); (err == nil) != ok {
			t.Errorf("ValidName(%q) = %v", name, err)
		}
	}
}

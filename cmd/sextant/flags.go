package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

var errUsage = errors.New("usage")

// flags wraps a FlagSet whose every flag falls back to an environment
// variable: --data-dir reads SEXTANT_DATA_DIR.
type flags struct {
	*flag.FlagSet
}

func newFlags(name string, stderr io.Writer) flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return flags{fs}
}

func envName(flagName string) string {
	return "SEXTANT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func help(name, usage string) string { return usage + " (env " + envName(name) + ")" }

func (f flags) StringVar(p *string, name, def, usage string) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		def = v
	}
	f.FlagSet.StringVar(p, name, def, help(name, usage))
}

func (f flags) String(name, def, usage string) *string {
	p := new(string)
	f.StringVar(p, name, def, usage)
	return p
}

func (f flags) IntVar(p *int, name string, def int, usage string) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		if n, err := strconv.Atoi(v); err == nil {
			def = n
		}
	}
	f.FlagSet.IntVar(p, name, def, help(name, usage))
}

func (f flags) Int(name string, def int, usage string) *int {
	p := new(int)
	f.IntVar(p, name, def, usage)
	return p
}

func (f flags) Float(name string, def float64, usage string) *float64 {
	if v, ok := os.LookupEnv(envName(name)); ok {
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			def = n
		}
	}
	return f.FlagSet.Float64(name, def, help(name, usage))
}

func (f flags) Bool(name string, def bool, usage string) *bool {
	if v, ok := os.LookupEnv(envName(name)); ok {
		if b, err := strconv.ParseBool(v); err == nil {
			def = b
		}
	}
	return f.FlagSet.Bool(name, def, help(name, usage))
}

func (f flags) Duration(name string, def time.Duration, usage string) *time.Duration {
	if v, ok := os.LookupEnv(envName(name)); ok {
		if d, err := time.ParseDuration(v); err == nil {
			def = d
		}
	}
	return f.FlagSet.Duration(name, def, help(name, usage))
}

// ListVar is a comma-separated list.
func (f flags) ListVar(p *[]string, name, usage string) {
	*p = splitList(os.Getenv(envName(name)))
	f.FlagSet.Func(name, help(name, usage), func(v string) error {
		*p = splitList(v)
		return nil
	})
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// parse parses args; -h prints usage and returns errUsage.
func (f flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		return errUsage
	}
	if f.NArg() > 0 {
		fmt.Fprintf(f.Output(), "unexpected arguments: %v\n", f.Args())
		return errUsage
	}
	return nil
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return "sextant " + s.Value
			}
		}
		return "sextant " + bi.Main.Version
	}
	return "sextant (devel)"
}

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

// newFlags makes the flags of the command `sextant name`; its usage is
// commandHelp, which parse returns on -h or --help.
func newFlags(name string, stderr io.Writer) flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // parse prints the usage: to stdout when asked for
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
	p := new(time.Duration)
	f.DurationVar(p, name, def, usage)
	return p
}

func (f flags) DurationVar(p *time.Duration, name string, def time.Duration, usage string) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		if d, err := time.ParseDuration(v); err == nil {
			def = d
		}
	}
	f.FlagSet.DurationVar(p, name, def, help(name, usage))
}

// AutoDuration is a duration whose negative default means "chosen at
// start" (shown and given as auto).
func (f flags) AutoDuration(name string, usage string) *time.Duration {
	p := new(time.Duration)
	*p = -1
	if v, ok := os.LookupEnv(envName(name)); ok {
		_ = (*autoDuration)(p).Set(v)
	}
	f.FlagSet.Var((*autoDuration)(p), name, help(name, usage))
	return p
}

// BytesVar is a size in bytes, given and shown as 64MiB, 512KiB, 1GiB or
// a number of bytes.
func (f flags) BytesVar(p *int, name string, def int, usage string) {
	*p = def
	if v, ok := os.LookupEnv(envName(name)); ok {
		_ = (*byteSize)(p).Set(v)
	}
	f.FlagSet.Var((*byteSize)(p), name, help(name, usage))
}

// Secret is a key: filled from its environment variable like any flag,
// but its value is never a default shown in the usage.
func (f flags) Secret(name, usage string) *string {
	p := new(string)
	f.FlagSet.StringVar(p, name, "", usage+" (env "+envName(name)+", never shown)")
	*p = os.Getenv(envName(name))
	return p
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

// parse parses args; -h, --help or a lone help returns a *helpError.
func (f flags) parse(args []string) error {
	if err := f.parseFlags(args); err != nil {
		return err
	}
	if f.NArg() == 1 && f.Arg(0) == "help" {
		return f.helpError()
	}
	if f.NArg() > 0 {
		fmt.Fprintf(f.Output(), "unexpected arguments: %v\n", f.Args())
		return errUsage
	}
	return nil
}

// parseFlags parses args up to the first positional: -h or --help
// returns a *helpError, other errors print the usage to stderr and return
// errUsage.
func (f flags) parseFlags(args []string) error {
	err := f.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		return f.helpError()
	}
	fmt.Fprintln(f.Output())
	fmt.Fprint(f.Output(), commandHelp(f.FlagSet))
	return errUsage
}

func (f flags) helpError() error {
	return &helpError{text: commandHelp(f.FlagSet), flags: f.FlagSet}
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

// demoMode is --demo, what a store without properties gets: the demo
// property and an admin key (demoCreate, without the flag), the property
// filled with traffic too (demoTraffic, --demo) or neither (demoOff,
// --demo=false).
type demoMode string

const (
	demoCreate  demoMode = ""
	demoTraffic demoMode = "true"
	demoOff     demoMode = "false"
)

func (d *demoMode) String() string { return string(*d) }

func (d *demoMode) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*d = demoMode(strconv.FormatBool(b))
	return nil
}

// IsBoolFlag makes --demo a switch.
func (*demoMode) IsBoolFlag() bool { return true }

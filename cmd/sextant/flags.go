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

	"github.com/sextant-analytics/sextant/pkg/cliconfig"
)

var errUsage = errors.New("usage")

// flags wraps a FlagSet whose every flag falls back to an environment
// variable: --data-dir reads SEXTANT_DATA_DIR. An environment value that
// does not parse fails the command (parse), naming the variable, unless
// the flag itself is given.
type flags struct {
	*flag.FlagSet
	st *flagState
}

// flagState is what parse checks once the arguments are parsed.
type flagState struct {
	envErrs map[string]error // by flag name: its environment value does not parse
	// contextual are the flags a context can give (contextFields), where
	// their values go; context is --context, registered with the first.
	contextual map[string]*string
	context    *string
	// active is the context the command used, once parsed (nil: none).
	active *activeContext
}

// activeContext is the context a command took values from.
type activeContext struct {
	name, path string
	ctx        cliconfig.Context
}

// contextFields are the flags that fall back, after their environment
// variable, to the context's value (sextant context): the server and the
// keys of the commands that call a server.
var contextFields = map[string]func(cliconfig.Context) string{
	"server":      func(c cliconfig.Context) string { return c.Server },
	"admin-key":   func(c cliconfig.Context) string { return c.AdminKey },
	"read-key":    func(c cliconfig.Context) string { return c.ReadKey },
	"write-key":   func(c cliconfig.Context) string { return c.WriteKey },
	"property-id": func(c cliconfig.Context) string { return c.PropertyID },
}

// configPath is the file of the contexts: $SEXTANT_CONFIG, else
// cliconfig.DefaultPath.
func configPath() (string, error) {
	if p := os.Getenv("SEXTANT_CONFIG"); p != "" {
		return p, nil
	}
	return cliconfig.DefaultPath()
}

// newFlags makes the flags of the command `sextant name`; its usage is
// commandHelp, which parse returns on -h or --help.
func newFlags(name string, stderr io.Writer) flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // parse prints the usage: to stdout when asked for
	return flags{FlagSet: fs, st: &flagState{envErrs: map[string]error{}, contextual: map[string]*string{}}}
}

// contextual makes the flag name, whose value goes to p, fall back to
// the context's value (see resolveContext), and registers --context
// with the first such flag.
func (f flags) contextual(name string, p *string) {
	if _, ok := contextFields[name]; !ok {
		return
	}
	f.st.contextual[name] = p
	if f.st.context == nil {
		f.st.context = f.String("context", "", "the context (see sextant context) whose server and keys to use instead of the current one")
	}
}

func envName(flagName string) string {
	return "SEXTANT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func help(name, usage string) string {
	if _, ok := contextFields[name]; ok {
		return usage + " (env " + envName(name) + ", else the context's)"
	}
	return usage + " (env " + envName(name) + ")"
}

// fromEnv gives the flag name its environment variable's value through
// set, when the variable is set and not empty; a value set refuses is
// kept as an error for parse.
func (f flags) fromEnv(name string, set func(string) error) {
	v := os.Getenv(envName(name))
	if v == "" {
		return
	}
	if err := set(v); err != nil {
		f.st.envErrs[name] = fmt.Errorf("environment %s=%q (--%s): %w", envName(name), v, name, err)
	}
}

// envErrors are the environment values that do not parse, of the flags
// not given on the command line.
func (f flags) envErrors() error {
	given := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	var errs []error
	f.VisitAll(func(fl *flag.Flag) {
		if err := f.st.envErrs[fl.Name]; err != nil && !given[fl.Name] {
			errs = append(errs, err)
		}
	})
	return errors.Join(errs...)
}

func (f flags) StringVar(p *string, name, def, usage string) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		def = v
	}
	f.FlagSet.StringVar(p, name, def, help(name, usage))
	f.contextual(name, p)
}

func (f flags) String(name, def, usage string) *string {
	p := new(string)
	f.StringVar(p, name, def, usage)
	return p
}

func (f flags) IntVar(p *int, name string, def int, usage string) {
	f.fromEnv(name, func(v string) (err error) {
		def, err = strconv.Atoi(v)
		return err
	})
	f.FlagSet.IntVar(p, name, def, help(name, usage))
}

func (f flags) Int(name string, def int, usage string) *int {
	p := new(int)
	f.IntVar(p, name, def, usage)
	return p
}

func (f flags) Float(name string, def float64, usage string) *float64 {
	f.fromEnv(name, func(v string) (err error) {
		def, err = strconv.ParseFloat(v, 64)
		return err
	})
	return f.FlagSet.Float64(name, def, help(name, usage))
}

func (f flags) Bool(name string, def bool, usage string) *bool {
	f.fromEnv(name, func(v string) (err error) {
		def, err = strconv.ParseBool(v)
		return err
	})
	return f.FlagSet.Bool(name, def, help(name, usage))
}

func (f flags) Duration(name string, def time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	f.DurationVar(p, name, def, usage)
	return p
}

func (f flags) DurationVar(p *time.Duration, name string, def time.Duration, usage string) {
	f.fromEnv(name, func(v string) (err error) {
		def, err = time.ParseDuration(v)
		return err
	})
	f.FlagSet.DurationVar(p, name, def, help(name, usage))
}

// AutoDuration is a duration whose negative default means "chosen at
// start" (shown and given as auto).
func (f flags) AutoDuration(name string, usage string) *time.Duration {
	p := new(time.Duration)
	*p = -1
	f.fromEnv(name, (*autoDuration)(p).Set)
	f.FlagSet.Var((*autoDuration)(p), name, help(name, usage))
	return p
}

// BytesVar is a size in bytes, given and shown as 64MiB, 512KiB, 1GiB or
// a number of bytes.
func (f flags) BytesVar(p *int, name string, def int, usage string) {
	*p = def
	f.fromEnv(name, (*byteSize)(p).Set)
	f.FlagSet.Var((*byteSize)(p), name, help(name, usage))
}

// Secret is a key: filled from its environment variable like any flag,
// but its value is never a default shown in the usage.
func (f flags) Secret(name, usage string) *string {
	p := new(string)
	env := "env " + envName(name)
	if _, ok := contextFields[name]; ok {
		env += ", else the context's"
	}
	f.FlagSet.StringVar(p, name, "", usage+" ("+env+"; never shown)")
	*p = os.Getenv(envName(name))
	f.contextual(name, p)
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
// Then it fails on an environment value that does not parse (see
// finish).
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
	return f.finish()
}

// finish runs once every argument is parsed: an environment value of a
// flag not given that does not parse is an error naming the variable,
// and the flags a context can give take its values.
func (f flags) finish() error {
	if err := f.envErrors(); err != nil {
		return err
	}
	return f.resolveContext()
}

// resolveContext gives each contextual flag neither given nor set by its
// environment variable the value of the context: --context (or
// SEXTANT_CONTEXT), else the current one. So a value comes from the flag,
// else the environment, else the context, else the flag's default. The
// file is read only when a value may come from it.
func (f flags) resolveContext() error {
	if len(f.st.contextual) == 0 {
		return nil
	}
	given := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	var open []string
	for name := range f.st.contextual {
		if !given[name] && os.Getenv(envName(name)) == "" {
			open = append(open, name)
		}
	}
	if len(open) == 0 && *f.st.context == "" {
		return nil
	}
	path, err := configPath()
	if err != nil {
		return err
	}
	cfg, err := cliconfig.Load(path)
	if err != nil {
		return err
	}
	name, c, err := cfg.Get(*f.st.context)
	if err != nil {
		return fmt.Errorf("%w in %s (see sextant context list)", err, path)
	}
	if name == "" {
		return nil
	}
	for _, n := range open {
		if v := contextFields[n](c); v != "" {
			*f.st.contextual[n] = v
		}
	}
	f.st.active = &activeContext{name: name, path: path, ctx: c}
	return nil
}

// fromContext is the value of the context the command used for the
// field of the flag name ("" without one).
func (f flags) fromContext(name string) string {
	if f.st.active == nil {
		return ""
	}
	return contextFields[name](f.st.active.ctx)
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
